"""``cnnlab explore`` as a user runs it: a real process on a real port, raw HTTP, Ctrl+C."""

import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
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
