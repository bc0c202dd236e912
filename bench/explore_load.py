"""Load test for ``cnnlab explore``: 8 concurrent clients x 50 forward requests (every layer's
activations) against a live server on 127.0.0.1, for convnet and vgg-mini.

    .venv/bin/python bench/explore_load.py                          # trains two tiny runs first
    .venv/bin/python bench/explore_load.py --runs runs/a runs/b      # or serves runs you have

Without --runs, it trains one epoch of convnet and of vgg-mini on 2,000 real Fashion-MNIST
images (real weights; the accuracy does not matter for speed). The server is the real command,
`cnnlab explore RUN... --port 0`, in its own process. Each client keeps one HTTP connection and
sends different test images; a request's latency runs from sending it to the last byte of the
answer. The reference is one client alone, measured in the same run, so the ratio says what the
concurrency costs on this machine. Exit 1 on any failed request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLIENTS = 8
REQUESTS = 50
ROW = "{:<10} {:>7} {:>8} {:>6} {:>8} {:>8} {:>8} {:>7} {:>6}"


def train_tiny_runs(directory: Path) -> list[Path]:
    runs = []
    for model in ("convnet", "vgg-mini"):
        out = directory / model
        argv = ["train", "--model", model, "--epochs", "1", "--train-size", "2000", "--valid-size", "500"]
        print(f"training a tiny {model} run ...", flush=True)
        subprocess.run([sys.executable, "-m", "cnnlab", *argv, "--out", str(out), "--quiet"], check=True)
        runs.append(out)
    return runs


def start_server(runs: list[Path]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "explore", *map(str, runs), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(timeout=1):
            line = proc.stdout.readline()
            if line.startswith("cnnlab explore: http://"):
                return proc, int(line.split()[2].rsplit(":", 1)[1].strip("/"))
    proc.kill()
    raise SystemExit("the server did not start")


def request(connection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_images(port: int, count: int) -> list[bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    bodies = []
    for index in range(count):
        status, data = request(connection, "GET", f"/api/runs/0/test?index={index}")
        if status != 200:
            raise SystemExit(f"no test images: {data.decode()}")
        bodies.append(json.dumps({"image": json.loads(data)["image"]}).encode())
    return bodies


def client(port: int, run: int, bodies: list[bytes], latencies: list, errors: list, layers: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for k, body in enumerate(bodies):
        started = time.perf_counter()
        try:
            status, data = request(connection, "POST", f"/api/runs/{run}/forward", body)
        except OSError as exc:
            errors.append(repr(exc))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        latencies.append(time.perf_counter() - started)
        if status != 200:
            errors.append(f"{status}: {data[:200]!r}")
        elif k % 10 == 0 and len(json.loads(data)["layers"]) != layers:  # parse a sample, not every answer
            errors.append("wrong number of layers")


def load(port: int, run: int, bodies: list[bytes], clients: int, layers: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=client,
            args=(port, run, bodies[c::clients][:REQUESTS] or bodies, latencies, errors, layers),
        )
        for c in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = sorted(1000 * t for t in latencies)
    return {
        "requests": len(latencies) + sum(e.startswith("OSError") for e in errors),
        "errors": errors,
        "p50": statistics.median(ms),
        "p95": ms[max(0, round(0.95 * len(ms)) - 1)],
        "max": ms[-1],
        "per_second": len(ms) / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, help="run directories (default: train two tiny ones)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = args.runs or train_tiny_runs(Path(scratch))
        proc, port = start_server(runs)
        try:
            return report(port, runs)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def report(port: int, runs: list[Path]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    described = json.loads(request(connection, "GET", "/api/runs")[1])["runs"]
    bodies = test_images(port, CLIENTS * REQUESTS)
    print(f"{CLIENTS} clients x {REQUESTS} forward requests each (all activations), {os.cpu_count()} CPUs")
    print(ROW.format("model", "clients", "requests", "errors", "p50 ms", "p95 ms", "max ms", "req/s", "KB"))
    failed = 0
    for run, info in enumerate(described):
        layers = len(json.loads(request(connection, "GET", f"/api/runs/{run}/layers")[1])["layers"])
        size = len(request(connection, "POST", f"/api/runs/{run}/forward", bodies[0])[1]) / 1024
        load(port, run, bodies[:40], 4, layers)  # warm-up
        alone = load(port, run, bodies[:REQUESTS], 1, layers)  # the reference: one client
        crowd = load(port, run, bodies, CLIENTS, layers)
        for clients, result in ((1, alone), (CLIENTS, crowd)):
            numbers = [f"{result[k]:.1f}" for k in ("p50", "p95", "max")]
            print(
                ROW.format(
                    info["model"],
                    clients,
                    result["requests"],
                    len(result["errors"]),
                    *numbers,
                    f"{result['per_second']:.0f}",
                    f"{size:.0f}",
                )
            )
        print(f"{'':<10} p95 under {CLIENTS} clients / p50 alone: {crowd['p95'] / alone['p50']:.1f}x")
        for error in (alone["errors"] + crowd["errors"])[:5]:
            print(f"  error: {error}")
        failed += len(alone["errors"]) + len(crowd["errors"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
