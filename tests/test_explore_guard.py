"""``cnnlab explore`` left running: who may make it work, and what a flood of connections,
malformed requests or hostile uploads can cost it.

Through Starlette's test client for the request checks (Origin, Content-Type, Sec-Fetch-Site,
Host, malformed JSON), and against a real uvicorn server on 127.0.0.1 for the socket-level
limits (read timeouts, the connection limit, bounded logging) and the decode budget.
"""

import base64
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest
from PIL import Image
from starlette.exceptions import StarletteDeprecationWarning

from cnnlab.inspect.explorer import guard, listen, served, server

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

OWN = "http://testserver"
IMAGE = base64.b64encode(bytes(784)).decode()


@pytest.fixture(scope="module")
def runs(trained_run):
    return served.load_runs([trained_run])


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(server.create_app(runs)) as c:
        yield c


def forward(client, headers: dict, body: bytes | None = None):
    body = json.dumps({"image": IMAGE, "activations": False}).encode() if body is None else body
    return client.post("/api/runs/0/forward", content=body, headers=headers)


# ---- who may ask ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, status, needle",
    [
        ({"Content-Type": "application/json"}, 403, "has no Origin header"),
        ({"Origin": "http://evil.example", "Content-Type": "application/json"}, 403, "evil.example"),
        ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403, "must come from"),
        ({"Origin": "http://testserver:8765", "Content-Type": "application/json"}, 403, "must come from"),
        ({"Origin": "null", "Content-Type": "application/json"}, 403, "'null'"),
        ({"Origin": OWN, "Content-Type": "text/plain"}, 415, "application/json. Received: 'text/plain'"),
        ({"Origin": OWN, "Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        ({"Origin": OWN, "Content-Type": "multipart/form-data; boundary=x"}, 415, "application/json"),
        ({"Origin": OWN}, 415, "Received: ''"),
        ({"Origin": OWN, "Content-Type": "application/json"}, 200, None),
        ({"Origin": OWN.upper(), "Content-Type": "Application/JSON; charset=utf-8"}, 200, None),
    ],
    ids=[
        "no origin",
        "foreign origin",
        "the issue's curl",
        "another port",
        "opaque origin",
        "text/plain",
        "a form",
        "multipart",
        "no content type",
        "the page",
        "the page, other spelling",
    ],
)
def test_a_post_must_come_from_the_page_as_json(client, headers, status, needle):
    answer = forward(client, headers)
    assert answer.status_code == status, answer.text
    if needle:
        assert needle in answer.json()["error"] and "\n" not in answer.json()["error"]


def test_an_upload_must_come_from_the_page_as_a_file(client):
    png = io.BytesIO()
    Image.new("L", (20, 20)).save(png, format="PNG")
    kinds = {"image/png": 200, "application/octet-stream": 200, "text/plain": 415, "multipart/form-data": 415}
    for kind, status in kinds.items():
        answer = client.post(
            "/api/image", content=png.getvalue(), headers={"Origin": OWN, "Content-Type": kind}
        )
        assert answer.status_code == status, (kind, answer.text)
    answer = client.post("/api/image", content=png.getvalue(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 403


def test_a_browser_request_from_another_site_is_refused_even_for_a_get(client):
    for site, status in [("cross-site", 403), ("same-site", 403), ("same-origin", 200), ("none", 200)]:
        assert client.get("/api/runs", headers={"Sec-Fetch-Site": site}).status_code == status, site
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link to the page


def test_malformed_json_of_any_depth_or_size_is_a_400(client):
    headers = {"Origin": OWN, "Content-Type": "application/json"}
    bodies = {
        "nested lists": b"[" * 60000,
        "nested, closed": b"[" * 30000 + b"]" * 30000,
        "nested in a field": b'{"image": ' + b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"}",
        "5,000 digits": b'{"layer": ' + b"9" * 5000 + b"}",
        "not UTF-8": b'{"image": "\xff\xfe"}',
        "a number": b"1e999",
        "empty": b"",
    }
    for name, body in bodies.items():
        answer = forward(client, headers, body)
        assert answer.status_code == 400, (name, answer.text)
        assert "\n" not in answer.json()["error"], name
    assert forward(client, headers).status_code == 200  # and it goes on serving


@pytest.mark.parametrize(
    "bound, good, bad",
    [
        ("127.0.0.1", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765"], ["evil.example:8765"]),
        ("127.0.0.2", ["127.0.0.2:8765", "localhost"], ["evil.example", "127.0.0.3:8765", ""]),
        ("::1", ["[::1]:8765", "[::1]", "localhost:8765"], ["[::2]:8765", "evil.example", "[::1"]),
    ],
)
def test_every_loopback_address_gets_the_host_guard(runs, bound, good, bad):
    hosts = guard.allowed_hosts(bound)
    assert hosts is not None
    with TestClient(server.create_app(runs, hosts)) as c:
        for host in good:
            assert c.get("/api/runs", headers={"Host": host}).status_code == 200, host
        for host in bad:
            answer = c.get("/api/runs", headers={"Host": host})
            assert answer.status_code == 400 and "Host names of this machine" in answer.json()["error"], host


def test_an_address_the_network_can_reach_has_no_host_guard_but_keeps_the_origin_check(runs):
    for bound in ("0.0.0.0", "::", "192.168.1.20"):
        assert guard.allowed_hosts(bound) is None
    with TestClient(server.create_app(runs, None), base_url="http://my-laptop.lan:8765") as c:
        assert c.get("/api/runs").status_code == 200
        body = json.dumps({"image": IMAGE}).encode()
        assert (
            forward(
                c, {"Content-Type": "application/json", "Origin": "http://my-laptop.lan:8765"}, body
            ).status_code
            == 200
        )
        assert (
            forward(
                c, {"Content-Type": "application/json", "Origin": "http://evil.example"}, body
            ).status_code
            == 403
        )


# ---- a real server: connections, timeouts, logs ---------------------------------


@pytest.fixture
def small_server(runs, request):
    """A real uvicorn server in a thread with room for 8 connections and a read timeout of 1 s
    (or what the test's ``read_timeout`` mark says)."""
    mark = request.node.get_closest_marker("read_timeout")
    sock = listen.bind("127.0.0.1", 0)
    uvicorn_server = listen.make_server(
        runs, sock, read_timeout=mark.args[0] if mark else 1.0, max_connections=8
    )
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield sock.getsockname()[1]
    uvicorn_server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def get_runs(port: int) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/api/runs")
    status = connection.getresponse().status
    connection.close()
    return status


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.read_timeout(60)
def test_idle_connections_cannot_lock_out_a_request(small_server):
    idle = [socket.create_connection(("127.0.0.1", small_server)) for _ in range(40)]
    assert get_runs(small_server) == 200  # the oldest idle connection made room for it
    closed = [closed_by_server(s, 2) for s in idle[:32]]  # room for 8: the 32 oldest had to go
    assert all(closed), closed
    assert not any(closed_by_server(s, 0.2) for s in idle[33:])  # the newest stay (no timeout yet)
    for s in idle:
        s.close()


def test_connections_that_send_nothing_are_closed_after_the_read_timeout(small_server):
    idle = [socket.create_connection(("127.0.0.1", small_server)) for _ in range(4)]
    assert all(closed_by_server(s, 10) for s in idle)
    for s in idle:
        s.close()
    assert get_runs(small_server) == 200


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and a Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.mark.parametrize("first", ["first request", "after a kept-alive answer"])
def test_a_request_sent_too_slowly_is_cut_off(small_server, first):
    slow = socket.create_connection(("127.0.0.1", small_server))
    if first != "first request":
        slow.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(slow).startswith(b"HTTP/1.1 200")
    slow.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    for _ in range(4):
        time.sleep(0.4)
        try:
            slow.sendall(b"X-Slow: 1\r\n")  # a header now and then, slower than the deadline allows
        except OSError:
            break
    assert closed_by_server(slow, 5)
    slow.close()
    assert get_runs(small_server) == 200


def test_a_flood_of_garbage_leaves_a_few_log_lines(small_server, caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(300):
        with socket.create_connection(("127.0.0.1", small_server)) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            s.settimeout(5)
            try:
                s.recv(1024)
            except OSError:
                pass
    assert get_runs(small_server) == 200
    lines = [r for r in caplog.records if r.name.startswith(("uvicorn", "asyncio", "cnnlab"))]
    assert 1 <= len(lines) <= 6, [r.getMessage() for r in lines]
    assert any("left out of the log" in r.getMessage() for r in lines) or len(lines) <= 5


def test_bounded_log_counts_what_it_leaves_out():
    bound = guard.BoundedLog(limit=2, window=0.2)
    record = lambda: logging.LogRecord(
        "uvicorn.error", logging.WARNING, __file__, 1, "Invalid HTTP", None, None
    )
    passed = [bound.filter(record()) for _ in range(10)]
    assert passed == [True, True] + [False] * 8
    time.sleep(0.25)
    later = record()
    assert bound.filter(later) and "8 more like this left out of the log" in later.getMessage()


# ---- the decode budget, under hostile uploads in parallel -----------------------


def hostile_png() -> bytes:
    """Small on the wire, at the decoder's pixel cap in its costliest mode (RGBA)."""
    from cnnlab.data.decode import MAX_PIXELS

    side = int(MAX_PIXELS**0.5)
    buffer = io.BytesIO()
    Image.new("RGBA", (side, side)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def peak_memory_mb(pid: int) -> float:
    status = open(f"/proc/{pid}/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/PID/status (Linux)")
def test_four_hostile_uploads_at_once_stay_within_two_decodes_of_memory(trained_run):
    import http.client

    from tests.test_explore_live import start, stop

    data = [hostile_png()] * 4
    proc, url = start(str(trained_run), "--port", "0")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        before = peak_memory_mb(proc.pid)
        statuses = []

        def upload(body: bytes):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {
                "Content-Type": "image/png",
                "Origin": f"http://127.0.0.1:{port}",
                "Host": f"127.0.0.1:{port}",
            }
            connection.request("POST", "/api/image", body=body, headers=headers)
            statuses.append(connection.getresponse().status)

        threads = [threading.Thread(target=upload, args=(body,)) for body in data]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        grown = peak_memory_mb(proc.pid) - before
        print(f"peak memory grew {grown:.0f} MB over 4 hostile uploads")
        assert statuses == [200] * 4
        assert grown < 200  # two decodes of at most 100 MB at once, never four
    finally:
        stop(proc)


def test_the_unspecified_address_prints_this_machine_and_the_network_address():
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        local, others = listen.urls(sock)
        port = sock.getsockname()[1]
    assert local == f"http://127.0.0.1:{port}/"
    assert all(u.startswith("http://") and u.endswith(f":{port}/") and "0.0.0.0" not in u for u in others)
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        assert listen.urls(sock) == (f"http://127.0.0.2:{sock.getsockname()[1]}/", [])


def test_the_command_warns_and_prints_a_usable_address(trained_run):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "explore", str(trained_run), "--port", "0", "--host", "0.0.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    from tests.test_explore_live import stop

    try:
        lines = []
        while not any(line.startswith("cnnlab explore: http://") for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
    finally:
        _, err = stop(proc)
    url = [line for line in lines if line.startswith("cnnlab explore: http://")][0].split()[2]
    assert url.startswith("http://127.0.0.1:")
    assert "anyone who can reach this machine" in err and "Traceback" not in err
