"""Load test for ``cnnlab explore``: 16 concurrent clients asking for forward passes (every
activation), Grad-CAM and occlusion maps, against the real command on 127.0.0.1; the page's load in
headless Chromium; and the server's memory after more than 1,000 requests.

    .venv/bin/python bench/explore_load.py                          # trains two tiny runs first
    .venv/bin/python bench/explore_load.py --runs runs/a runs/b      # or serves runs you have

Without --runs, it trains one epoch of convnet and of vgg-mini on 2,000 real Fashion-MNIST
images (real weights; the accuracy does not matter for speed). The server is the real command,
`cnnlab explore RUN... --port 0`, in its own process. Each client keeps one HTTP connection and
sends different test images, as the page does (its Origin, JSON); a request's latency runs from
sending it to the last byte of the answer. The reference is one client alone, measured in the same
run, so the ratio says what the concurrency costs on this machine. The page load is the time from
navigation to the first full render (page, scripts, runs, layers, a test image and its forward for
every run), the median of 5 loads. Exit 1 on any failed request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLIENTS = 16
REQUESTS = 25  # per client: 400 requests of each kind under load
KINDS = {  # what each request asks for, beside the image
    "forward": ("forward", {}),
    "gradcam": ("saliency", {"method": "gradcam"}),
    "occlusion": ("saliency", {"method": "occlusion"}),
}
ROW = "{:<10} {:<10} {:>7} {:>8} {:>6} {:>8} {:>8} {:>8} {:>7}"


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
    origin = f"http://{connection.host}:{connection.port}"
    headers = {"Content-Type": "application/json", "Origin": origin} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_images(port: int, count: int) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    images = []
    for index in range(count):
        status, data = request(connection, "GET", f"/api/runs/0/test?index={index}")
        if status != 200:
            raise SystemExit(f"no test images: {data.decode()}")
        images.append(json.loads(data)["image"])
    return images


def client(port: int, path: str, bodies: list[bytes], latencies: list, errors: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for body in bodies:
        started = time.perf_counter()
        try:
            status, data = request(connection, "POST", path, body)
        except OSError as exc:
            errors.append(repr(exc))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        latencies.append(time.perf_counter() - started)
        if status != 200:
            errors.append(f"{status}: {data[:200]!r}")


def load(port: int, path: str, bodies: list[bytes], clients: int, per_client: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    shares = [bodies[c::clients][:per_client] or bodies[:per_client] for c in range(clients)]
    threads = [
        threading.Thread(target=client, args=(port, path, share, latencies, errors)) for share in shares
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = sorted(1000 * t for t in latencies) or [float("nan")]
    return {
        "requests": len(latencies) + len(errors),
        "errors": errors,
        "p50": statistics.median(ms),
        "p95": ms[max(0, round(0.95 * len(ms)) - 1)],
        "per_second": len(latencies) / wall,
    }


def rss_mb(pid: int) -> float:
    return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024


def page_load(port: int, loads: int = 5) -> float | None:
    """Median milliseconds from navigation to the page's first full render, in headless Chromium."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not (chromium and driver_path):
        return None
    options = Options()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="cnnlab-bench-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    times = []
    try:
        for _ in range(loads):
            driver.get(f"http://127.0.0.1:{port}/")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                first = driver.execute_script("return window.cnnlab && window.cnnlab.state.firstRender")
                if first:
                    times.append(first)
                    break
                time.sleep(0.02)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return statistics.median(times) if times else None


def report(proc: subprocess.Popen, port: int, clients: int, per_client: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    described = json.loads(request(connection, "GET", "/api/runs")[1])["runs"]
    images = test_images(port, clients * per_client)
    cpus = os.cpu_count()
    print(f"{clients} clients x {per_client} requests each, {cpus} CPUs, load average {load_average()}")
    started_rss, served = rss_mb(proc.pid), 0
    print(ROW.format("model", "request", "clients", "requests", "errors", "p50 ms", "p95 ms", "req/s", "KB"))
    failed = 0
    for run, info in enumerate(described):
        for kind, (route, extra) in KINDS.items():
            path = f"/api/runs/{run}/{route}"
            bodies = [json.dumps({"image": image, **extra}).encode() for image in images]
            fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=120)  # an idle one is closed in 5 s
            size = len(request(fresh, "POST", path, bodies[0])[1]) / 1024
            load(port, path, bodies[:32], 4, 8)  # warm-up
            alone = load(port, path, bodies, 1, per_client)  # the reference: one client
            crowd = load(port, path, bodies, clients, per_client)
            served += 33 + alone["requests"] + crowd["requests"]
            for n, result in ((1, alone), (clients, crowd)):
                numbers = [f"{result[k]:.1f}" for k in ("p50", "p95")]
                print(
                    ROW.format(
                        info["model"],
                        kind,
                        n,
                        result["requests"],
                        len(result["errors"]),
                        *numbers,
                        f"{result['per_second']:.0f}",
                        f"{size:.0f}",
                    )
                )
            print(
                f"{'':<21} p95 under {clients} clients / p50 alone: {crowd['p95'] / alone['p50']:.1f}x",
                flush=True,
            )
            for error in (alone["errors"] + crowd["errors"])[:5]:
                print(f"  error: {error}")
            failed += len(alone["errors"]) + len(crowd["errors"])
    after = rss_mb(proc.pid)
    print(f"server memory (RSS): {started_rss:.0f} MB after start-up, {after:.0f} MB after {served} requests")
    first = page_load(port)
    print(
        f"page load to first full render: {first:.0f} ms (median of 5)" if first else "page load: no Chromium"
    )
    print(f"load average at the end: {load_average()}")
    return 1 if failed else 0


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, help="run directories (default: train two tiny ones)")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per client")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = args.runs or train_tiny_runs(Path(scratch))
        proc, port = start_server(runs)
        try:
            return report(proc, port, args.clients, args.requests)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
