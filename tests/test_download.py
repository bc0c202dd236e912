"""The downloader against a real HTTP server on 127.0.0.1 serving synthetic IDX files."""

import http.server
import logging
import threading

import pytest

from cnnlab import data
from cnnlab.data.download import download_all, download_file
from cnnlab.errors import DataError
from tests.idx import write_synthetic_dataset


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    mode = "ok"  # ok | error | truncate
    hits: list[str] = []

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.hits.append(name)
        if self.mode == "error":
            self.send_error(500, "server on fire")
            return
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.mode == "truncate" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    source = tmp_path / "source"
    specs = write_synthetic_dataset(source, 30, 10)
    handler = type(
        "Handler",
        (_Handler,),
        {"files": {p.name: p.read_bytes() for p in source.iterdir()}, "mode": "ok", "hits": []},
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/files/", handler, specs
    httpd.shutdown()
    httpd.server_close()


def _fast(**kw):
    return dict(retries=2, timeout=5, backoff=0.0, quiet=True, **kw)


def test_download_all_with_good_checksums(server, tmp_path):
    url, handler, specs = server
    dest = download_all(tmp_path / "dest", files=specs, mirrors=(url,), **_fast())
    assert data.FASHION_MNIST.read(dest).train_images.shape == (30, 1, 28, 28)
    assert not list(dest.glob("*.part"))
    handler.hits.clear()
    download_all(dest, files=specs, mirrors=(url,), **_fast())  # already there and verified
    assert handler.hits == []


def test_bad_checksum_is_refused_and_leaves_nothing(server, tmp_path):
    url, handler, specs = server
    spec = specs["train_labels"]
    wrong = data.DataFile(spec.name, "0" * 32, spec.raw_sha256)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="does not match the published"):
        download_file(wrong, dest, mirrors=(url,), **_fast())
    assert list(dest.iterdir()) == []


def test_truncated_body_is_retried_then_refused(server, tmp_path):
    url, handler, specs = server
    handler.mode = "truncate"
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="could not download"):
        download_file(specs["train_images"], dest, mirrors=(url,), **_fast())
    assert handler.hits.count(specs["train_images"].name) == 2  # retried
    assert list(dest.iterdir()) == []


def test_server_error_falls_back_to_next_mirror(server, tmp_path):
    url, handler, specs = server
    handler.mode = "error"
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="500|server on fire") as info:
        download_file(specs["test_labels"], dest, mirrors=(url,), **_fast())
    with pytest.raises(DataError, match="500|server on fire") as info:  # the dataset's own hint
        data.FASHION_MNIST.download(dest, mirrors=(url,), retries=1, timeout=5, backoff=0.0)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    handler.mode = "ok"
    dead = "http://127.0.0.1:9/"  # nothing listens on the discard port
    path = download_file(specs["test_labels"], dest, mirrors=(dead, url), **_fast())
    assert path.read_bytes() == handler.files[specs["test_labels"].name]


def test_a_failed_download_keeps_a_good_file(server, tmp_path):
    url, handler, specs = server
    spec = specs["test_labels"]
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / spec.name).write_bytes(b"previous contents")
    handler.mode = "truncate"
    with pytest.raises(DataError):
        download_file(spec, dest, mirrors=(url,), **_fast())
    assert (dest / spec.name).read_bytes() == b"previous contents"


def test_cli_download_from_a_mirror_reports_bad_checksums(server, tmp_path, capsys):
    """Through the CLI the published checksums apply, so synthetic files are refused: exit 2, one line."""
    from cnnlab.cli import main

    url, _, _ = server
    code = main(
        [
            "data",
            "download",
            "--data-dir",
            str(tmp_path / "d"),
            "--mirror",
            url,
            "--retries",
            "1",
            "--timeout",
            "5",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cnnlab: error: could not download")
    assert not list((tmp_path / "d").glob("*"))


def test_http_4xx_is_not_retried_but_the_next_mirror_is_tried(server, tmp_path):
    url, handler, specs = server
    missing = data.DataFile("missing.gz", "0" * 32, "")
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(missing, tmp_path, mirrors=(url, url), **_fast())
    assert handler.hits == ["missing.gz", "missing.gz"]  # once per mirror, despite retries=2


def test_a_download_keeps_pooch_logging_off_the_terminal(server, tmp_path, capsys):
    """pooch logs each download at INFO on a stderr handler of its own; only errors may pass. (Its
    handler holds whichever stderr was current at import, so a handler of ours does the listening.)"""
    import pooch

    url, _, specs = server
    records = []
    listener = logging.Handler()
    listener.emit = records.append
    pooch.get_logger().addHandler(listener)
    try:
        download_all(tmp_path / "dest", files=specs, mirrors=(url,), **{**_fast(), "quiet": False})
    finally:
        pooch.get_logger().removeHandler(listener)
    assert [r.getMessage() for r in records if r.levelno < logging.ERROR] == []
    out, err = capsys.readouterr()
    assert out.count("downloading ") == 4 and err == ""
