"""``cnnlab explore`` as a user runs it: a real process on a real port, raw HTTP, Ctrl+C."""

import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest


def start(*argv: str) -> tuple[subprocess.Popen, str]:
    """Start `cnnlab explore ...`, wait for the line with its URL; (process, URL)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "explore", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(timeout=1):
            line = proc.stdout.readline()
            if line.startswith("cnnlab explore: http://"):
                return proc, line.split()[2]
    proc.kill()
    raise AssertionError(f"no URL printed; stderr: {proc.stderr.read()}")


def raw_get(port: int, path: str, host: str = "127.0.0.1", address: str = "127.0.0.1") -> tuple[int, bytes]:
    """GET ``path`` exactly as written: no client-side clean-up of '..' or '//'."""
    connection = http.client.HTTPConnection(address, port, timeout=30)
    connection.putrequest("GET", path, skip_host=True)
    connection.putheader("Host", f"{host}:{port}")
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.read()


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return out, err


@pytest.mark.slow
def test_serves_only_its_api_and_stops_cleanly_on_ctrl_c(trained_run):
    proc, url = start(str(trained_run), "--port", "0")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert url == f"http://127.0.0.1:{port}/"
        status, body = raw_get(port, "/api/runs")
        assert status == 200 and json.loads(body)["runs"][0]["model"] == "convnet"
        for path in [
            "/static/../../pyproject.toml",
            "/static/../server.py",
            "/../../../etc/passwd",
            "/api/runs/0/../../../../etc/passwd",
            "/static/%2e%2e/%2e%2e/README.md",
            "//etc/passwd",
            "/static/./explore.js/../../network.py",
        ]:
            status, body = raw_get(port, path)
            assert status == 404, path
            assert list(json.loads(body)) == ["error"], path
        status, _ = raw_get(port, "/api/runs", host="rebound.example")  # DNS rebinding
        assert status == 400
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert "cnnlab explore: stopped" in out and "Traceback" not in err


@pytest.mark.slow
def test_another_host_is_warned_about(trained_run):
    proc, url = start(str(trained_run), "--port", "0", "--host", "0.0.0.0")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert raw_get(port, "/api/runs", host="my-laptop.lan")[0] == 200  # no loopback host check
    finally:
        out, err = stop(proc)
    warnings = [line for line in err.splitlines() if line.startswith("cnnlab: warning:")]
    assert len(warnings) == 1 and "anyone who can reach this machine" in warnings[0]
    assert proc.returncode == 0 and "Traceback" not in err


def ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("address", ["127.0.0.2", "::1"])
def test_every_loopback_address_refuses_other_host_names(trained_run, address):
    if address == "::1" and not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    proc, url = start(str(trained_run), "--port", "0", "--host", address)
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        named = f"[{address}]" if ":" in address else address
        assert url == f"http://{named}:{port}/"
        assert raw_get(port, "/api/runs", host=named, address=address)[0] == 200
        assert raw_get(port, "/api/runs", host="localhost", address=address)[0] == 200
        assert raw_get(port, "/api/runs", host="rebound.example", address=address)[0] == 400  # DNS rebinding
    finally:
        out, err = stop(proc)
    assert "warning" not in err and proc.returncode == 0


EPOCHS = 16  # half a second or more each: together longer than the explorer takes to start


@pytest.mark.slow
def test_train_follow_opens_the_explorer_which_follows_each_epoch(synthetic_dir, tmp_path):
    """`cnnlab train --follow`: the explorer (its own process) waits for the first epoch, then shows
    each new one as its checkpoint lands, and goes on after training until Ctrl+C stops both."""
    run = tmp_path / "run"
    argv = ["train", "--follow", "--data-dir", str(synthetic_dir), "--out", str(run), "--model", "convnet"]
    argv += [
        "--train-size",
        "600",
        "--valid-size",
        "0",
        "--batch-size",
        "10",
        "--epochs",
        str(EPOCHS),
        "--lr",
        "0.01",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "BROWSER": "true"}  # --open opens nothing
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, so one Ctrl+C reaches the explorer too
    )
    lines: list[str] = []
    try:
        url = read_until(proc, lines, "cnnlab explore: http://").split()[2]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        seen, deadline = [], time.monotonic() + 240
        while not seen or not seen[-1]["finished"]:
            assert time.monotonic() < deadline, f"the page never saw the run finish; it saw {seen}"
            status, body = raw_get(port, "/api/runs/0/progress")
            assert status == 200, body
            progress = json.loads(body)
            if not seen or (progress["version"], progress["epochs_done"]) != (
                seen[-1]["version"],
                seen[-1]["epochs_done"],
            ):
                seen.append(progress)
            time.sleep(0.1)
        read_until(proc, lines, "cnnlab train: the explorer goes on")
        assert raw_get(port, "/api/runs")[0] == 200  # still serving after training
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        proc.reader.join(timeout=10)
        out, err = "", proc.stderr.read()
    done = [p["epochs_done"] for p in seen]
    print("epochs seen, version by version:", done)
    assert done == sorted(done) and done[-1] == EPOCHS and seen[-1]["test_accuracy"] is not None
    assert any(0 < d < EPOCHS for d in done) and len(set(done)) >= 2  # it showed epochs while training
    assert [p["version"] for p in seen] == sorted({p["version"] for p in seen})  # each change a new version
    assert [row["epoch"] for row in seen[-1]["history"]] == list(range(1, EPOCHS + 1))
    all_out = "".join(lines) + out
    assert "waiting for run's first epoch" in all_out and "Traceback" not in err, err
    assert proc.returncode == 0


def read_until(proc: subprocess.Popen, lines: list[str], prefix: str, timeout: float = 300) -> str:
    """Wait until the process has printed a line starting with ``prefix`` (read by a thread into
    ``lines``, so lines Python buffered are never missed); that line."""
    if not getattr(proc, "reader", None):

        def read():
            for line in proc.stdout:
                lines.append(line)

        proc.reader = threading.Thread(target=read, daemon=True)
        proc.reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((line for line in list(lines) if line.startswith(prefix)), None)
        if found:
            return found
        if proc.poll() is not None and not proc.reader.is_alive():
            break
        time.sleep(0.05)
    raise AssertionError(f"no line starting {prefix!r}; so far: {''.join(lines)[-2000:]}")
