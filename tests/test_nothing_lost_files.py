"""Nothing lost, take two (issue 25), the files: writes that respect what they replace, reads that are
bounded and never block, and one line instead of each traceback a damaged or strange file gave.

Every test here failed against the code before the fix. A read that used to block forever runs in a
daemon thread or a subprocess with a deadline, so the old behaviour fails the test instead of hanging it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab import fileio
from cnnlab.cli import main
from cnnlab.data.idx import read_idx
from cnnlab.errors import CnnlabError, ConfigError, DataError, RunDirError
from tests.idx import idx_bytes, write_synthetic_dataset


def fake_dev_null(path: Path) -> Path:
    """A character device like /dev/null (1, 3), made in a temporary directory: the real one is never
    touched. Needs CAP_MKNOD (root in a container); without it the test that needs one skips."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc.strerror})")
    return path


def unix_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server


def finishes(function, *args, timeout: float = 30.0):
    """``function(*args)`` in a daemon thread: (finished, result or exception). A read that blocks
    forever leaves the thread behind and reports unfinished, instead of hanging the test run."""
    box: dict = {}

    def work():
        try:
            box["value"] = function(*args)
        except BaseException as exc:  # handed back to the test
            box["value"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), box.get("value")


# --- atomic writes replace only regular files, or nothing --------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory", "device"])
def test_an_atomic_write_refuses_what_is_not_a_regular_file_and_leaves_it(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        unix_socket(target)
    elif kind == "directory":
        target.mkdir()
    else:
        fake_dev_null(target)
    mode = os.lstat(target).st_mode
    with pytest.raises(RunDirError, match="not a regular file|is a directory") as refused:
        fileio.write_text(target, "x")
    assert "\n" not in str(refused.value)
    assert os.lstat(target).st_mode == mode  # the same kind of file, not replaced by a rename
    via_link = tmp_path / "link"
    via_link.symlink_to(target)
    with pytest.raises(RunDirError):
        fileio.write_text(via_link, "x")
    assert via_link.is_symlink() and os.lstat(target).st_mode == mode


def test_a_directory_that_refuses_a_new_file_is_named_and_no_option_is_blamed(tmp_path, monkeypatch):
    """A directory refusing the temporary file (read-only, out of inodes) is one line naming it; the
    advice names no option, since the same write serves a run's --out, --output and the caches."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "report.html"
    with pytest.raises(RunDirError) as caught:
        fileio.write_atomic(target, lambda fh: fh.write(b"x"))
    assert (
        str(caught.value)
        == f"cannot write in {tmp_path}: Permission denied; choose a directory you can write to"
    )
    assert not target.exists()


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    fileio.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "made-by-the-write.json")
    fileio.write_text(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "made-by-the-write.json").read_text() == "made"


def test_an_output_the_user_named_as_a_pipe_is_written_into_it(trained_run, tmp_path, capsys):
    """report --output at a FIFO (what /dev/stdout is in a pipeline) streams into it."""
    fifo = tmp_path / "stdout"
    os.mkfifo(fifo)
    received = {}

    def read():
        with open(fifo, "rb") as fh:
            received["bytes"] = fh.read()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert main(["report", str(trained_run), "--output", str(fifo)]) == 0, capsys.readouterr().err
    reader.join(30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received["bytes"].startswith(b"<!DOCTYPE html>") and len(received["bytes"]) > 10_000


# --- the checksum record: only a record, read bounded, never blocking -----------------------------------


# Loads a synthetic dataset made "published" (its checksums are data.FILES'), so each load hashes it and
# records it, as with the real files; then prints the process's peak memory.
LOAD_PUBLISHED = """
import sys, tempfile
from pathlib import Path
from cnnlab import data
from cnnlab.data import verified
from tests.idx import write_synthetic_dataset
if not Path(sys.argv[1]).exists():  # the same files at every load, so a record of them holds
    write_synthetic_dataset(Path(sys.argv[1]))
with tempfile.TemporaryDirectory() as scratch:  # the same content again: the published specs
    data.FILES.update(write_synthetic_dataset(Path(scratch)))
verified.SETTLED_NS = 0  # the files were written a moment ago; record them all the same
data.FASHION_MNIST.read(Path(sys.argv[1]))
# VmHWM, this process's own peak (ru_maxrss would carry the forking parent's across exec).
print(next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def load_in_subprocess(
    data_dir: Path, cache: Path, timeout: float = 60.0
) -> tuple[subprocess.CompletedProcess, int]:
    """Load the data with ``cache`` as the checksum record; the process and its peak memory in MB."""
    env = {**os.environ, "CNNLAB_CHECKSUM_CACHE": str(cache), "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", LOAD_PUBLISHED, str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading blocked on the checksum record at {cache}")
    assert done.returncode == 0, done.stderr
    return done, int(done.stdout.split()[-1])


@pytest.mark.parametrize("kind", ["device", "fifo", "symlink-to-device", "garbage", "other-json", "huge"])
def test_the_checksum_record_is_never_replaced_by_a_non_record_nor_blocks(tmp_path, kind):
    cache = tmp_path / "cache"
    if kind == "device":
        fake_dev_null(cache)
    elif kind == "fifo":
        os.mkfifo(cache)
    elif kind == "symlink-to-device":
        cache.symlink_to(fake_dev_null(tmp_path / "null"))
    elif kind == "garbage":
        cache.write_text("my notes, not a record")
    elif kind == "other-json":
        cache.write_text('{"a": 1}')
    else:
        with open(cache, "wb") as fh:  # sparse: 300 MB that take no disk
            fh.truncate(300 << 20)
    before = (os.lstat(cache).st_mode, os.lstat(cache).st_size, os.stat(cache).st_mode)
    for _ in range(2):
        done, peak_mb = load_in_subprocess(tmp_path / "data", cache)
    assert (os.lstat(cache).st_mode, os.lstat(cache).st_size, os.stat(cache).st_mode) == before
    assert peak_mb < 300, f"{peak_mb} MB: the record was read into memory"
    if kind in ("garbage", "other-json"):
        assert cache.read_text() in ("my notes, not a record", '{"a": 1}')
    if kind in ("device", "symlink-to-device"):  # /dev/null: no record, and nothing to say about it
        assert done.stderr == ""
    else:
        assert "should hold cnnlab's record of verified data files" in done.stderr


def test_a_record_of_cnnlab_is_still_written_and_read(tmp_path):
    cache = tmp_path / "record.json"
    load_in_subprocess(tmp_path / "data", cache)
    files = json.loads(cache.read_text())["files"]
    assert len(files) == 4 and all(len(entry["sha256"]) == 64 for entry in files.values())
    written = cache.stat().st_mtime_ns
    done, _ = load_in_subprocess(tmp_path / "data", cache)  # all four found in it: nothing to write
    assert cache.stat().st_mtime_ns == written and done.stderr == ""


# --- data files: regular only, bounded by their header --------------------------------------------------


def gz_with_a_flipped_byte(content: bytes) -> bytes:
    """The gzip of ``content`` with one byte of its deflate stream changed, same size, such that
    decompressing fails inside zlib (not at the CRC check, which the old code already caught)."""
    import zlib

    packed = bytearray(gzip.compress(content, mtime=0))
    for i in range(12, len(packed) - 8):
        changed = bytearray(packed)
        changed[i] ^= 0xFF
        try:
            gzip.decompress(bytes(changed))
        except zlib.error:
            return bytes(changed)
        except (OSError, EOFError):
            continue
    raise AssertionError("no byte flip gives a zlib error")


def test_a_flipped_byte_inside_a_gzip_is_one_line_in_every_load_and_in_verify(tmp_path, capsys):
    directory = tmp_path / "data"
    write_synthetic_dataset(directory)
    labels = directory / "train-labels-idx1-ubyte.gz"
    damaged = gz_with_a_flipped_byte(gzip.decompress(labels.read_bytes()))
    assert len(damaged) == len(gzip.compress(gzip.decompress(labels.read_bytes()), mtime=0))
    labels.write_bytes(damaged)
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(labels)
    assert main(["data", "verify", "--data-dir", str(directory)]) == 2
    args = ["train", "--data-dir", str(directory), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "corrupt gzip" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def peak_memory(function, *args) -> tuple[int, object]:
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except CnnlabError as exc:
            result = exc
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_refused_after_what_its_header_declares(tmp_path):
    """A 10-label IDX header followed by 200 MB of zeros, 200 KB gzipped: read no further than 10 bytes
    past the header. And a header that declares more than cnnlab reads is refused before any data."""
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb") as fh:
        fh.write(idx_bytes(np.zeros(10, np.uint8)))
        for _ in range(200):
            fh.write(bytes(1 << 20))
    peak, result = peak_memory(read_idx, bomb)
    assert isinstance(result, DataError) and "truncated or corrupt" in str(result), result
    assert peak < 8 << 20, f"{peak:,} bytes held to read a 10-byte array"
    huge = tmp_path / "huge.gz"
    huge.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + (60_000).to_bytes(4, "big") * 3, mtime=0))
    with pytest.raises(DataError, match="declares .* bytes in its IDX header, more than"):
        read_idx(huge)


def test_a_huge_sparse_data_file_is_refused_by_its_size_not_read(tmp_path):
    raw = tmp_path / "labels-idx1-ubyte"
    raw.write_bytes(idx_bytes(np.zeros(10, np.uint8)))
    with open(raw, "r+b") as fh:
        fh.truncate(300 << 20)  # sparse: its header says 10 bytes of labels
    peak, result = peak_memory(read_idx, raw)
    assert isinstance(result, DataError) and "needs 18" in str(result), result
    assert peak < 8 << 20


def test_a_fifo_as_a_data_file_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "train-labels-idx1-ubyte.gz"
    os.mkfifo(fifo)
    finished, outcome = finishes(read_idx, fifo, timeout=10)
    assert finished, "reading a FIFO blocked"
    assert isinstance(outcome, DataError) and "not a regular file" in str(outcome)


# --- one line instead of each traceback -------------------------------------------------------------


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def commands_on(run: Path) -> list[list[str]]:
    return [["evaluate", str(run)], ["train", "--resume", str(run)], ["show", str(run), "filters"]]


def damage_checkpoint(run: Path, change) -> None:
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    change(payload)
    torch.save(payload, run / "checkpoint.pt")


@pytest.mark.parametrize(
    "damage, words",
    [
        ("empty", "is empty (0 bytes), not a checkpoint"),
        ("history-of-strings", "its history is not a list of epoch rows"),
        ("ema-a-list", "its ema is not a dict of tensors"),
        ("garbage-rng", "its random state numpy_rng"),
        ("directory", "it is a directory, not a regular file"),
        ("fifo", "it is a FIFO"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_in_every_command(run_copy, capsys, damage, words):
    checkpoint = run_copy / "checkpoint.pt"
    if damage == "empty":
        checkpoint.write_bytes(b"")
    elif damage == "history-of-strings":
        damage_checkpoint(run_copy, lambda p: p.update(history=["epoch 1", "epoch 2"]))
    elif damage == "ema-a-list":
        damage_checkpoint(run_copy, lambda p: p.update(ema=[1, 2, 3]))
    elif damage == "garbage-rng":
        damage_checkpoint(run_copy, lambda p: p.update(numpy_rng=torch.tensor([7, 7, 7])))
    elif damage == "directory":
        checkpoint.unlink()
        checkpoint.mkdir()
    else:
        checkpoint.unlink()
        os.mkfifo(checkpoint)
    (run_copy / "summary.json").unlink()  # unfinished, so --resume has something to do
    for command in commands_on(run_copy):
        finished, code = finishes(main, command, timeout=120)
        assert finished and code == 2, (command, code)
        err = one_line(capsys)
        assert words in err and "missing" not in err, err
    with pytest.raises(RunDirError, match=re.escape(words)):
        _ = cnnlab.load_run(run_copy).model


def test_a_name_over_255_bytes_or_a_path_over_path_max_is_one_line(synthetic_dir, tmp_path, capsys):
    long_name = tmp_path / ("n" * 300)
    too_deep = Path(str(tmp_path) + ("/" + "d" * 200) * 25)
    for path in (long_name, too_deep):
        assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(path), "--epochs", "1"]) == 2
        assert "cannot" in one_line(capsys)
        for command in (
            ["evaluate", str(path)],
            ["train", "--resume", str(path)],
            ["show", str(path), "filters"],
        ):
            assert main(command) == 2, command
            assert "File name too long" in one_line(capsys)
        with pytest.raises(RunDirError, match="File name too long"):
            cnnlab.load_run(path)


def test_a_symlink_loop_as_data_dir_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert main(["train", "--data-dir", str(loop), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    assert "--data-dir" in one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_summary_that_is_a_list_is_one_line(run_copy, capsys):
    (run_copy / "summary.json").write_text("[1, 2, 3]")
    with pytest.raises(RunDirError, match="holds a JSON list, where cnnlab writes a dict"):
        _ = cnnlab.load_run(run_copy).summary
    assert main(["evaluate", str(run_copy)]) == 2
    assert "summary.json is corrupt" in one_line(capsys)


def test_a_config_nested_100000_deep_is_one_line(run_copy, capsys):
    (run_copy / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["evaluate", str(run_copy)]) == 2
    assert "nested too deeply" in one_line(capsys)
    assert main(["train", "--config", str(run_copy / "config.json")]) == 2
    assert "nested too deeply" in one_line(capsys)


@pytest.mark.parametrize(
    "text", ["epoch,train_loss\nfoo,bar\n", "\x00\x01garbage", "epoch,train_loss,valid_loss\n1,2\n"]
)
def test_a_garbage_metrics_csv_is_one_error_in_run_history(run_copy, text):
    (run_copy / "metrics.csv").write_text(text)
    with pytest.raises(RunDirError, match="metrics.csv is unreadable or corrupt"):
        _ = cnnlab.load_run(run_copy).history


def test_a_stale_tmp_directory_in_a_run_is_left_alone(run_copy, capsys):
    (run_copy / "summary.json").unlink()
    stale = run_copy / ".metrics.csv.x.tmp"
    stale.mkdir()
    (stale / "mine.txt").write_text("a user's file")
    assert main(["train", "--resume", str(run_copy)]) == 0, capsys.readouterr().err
    assert (stale / "mine.txt").read_text() == "a user's file"


def test_wrong_types_at_the_api_are_cnnlab_errors(run_copy):
    for call in (
        lambda: cnnlab.load_run(None),
        lambda: cnnlab.load_run(5),
        lambda: cnnlab.train(resume=5),
        lambda: cnnlab.train(resume=b"runs/x"),
    ):
        with pytest.raises(ConfigError, match="must be a path"):
            call()
    run = cnnlab.load_run(run_copy)
    for images in (np.array([["a"] * 28] * 28), np.full((28, 28), object()), np.zeros((28, 28), complex)):
        with pytest.raises(ConfigError, match=r"images must hold numbers \(pixel values") as refused:
            run.predict(images)
        assert str(images.dtype) in str(refused.value)


# --- the wording cases -----------------------------------------------------------------------------


def test_an_lr_find_directory_given_to_evaluate_says_what_it_is(synthetic_dir, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    args = ["lr-find", "--data-dir", str(synthetic_dir), "--out", str(sweep), "--steps", "10"]
    assert main([*args, "--train-size", "300", "--valid-size", "100", "--batch-size", "30"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(sweep)]) == 2
    err = one_line(capsys)
    assert "made by `cnnlab lr-find`, not `cnnlab train`" in err and "resume" not in err


def test_a_dangling_out_symlink_says_so(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(out), "--epochs", "1"]) == 2
    err = one_line(capsys)
    assert "symbolic link to" in err and "does not exist" in err and "File exists" not in err


# --- outputs never replace a run's own files ------------------------------------------------------------


@pytest.mark.parametrize(
    "command, name",
    [
        (["export", "RUN", "--format", "safetensors", "--output", "RUN/checkpoint.pt"], "checkpoint.pt"),
        (["report", "RUN", "--output", "RUN/config.json"], "config.json"),
        (["convolve", "--animate", "RUN/loss.png"], "loss.png"),
    ],
)
def test_an_output_pointed_at_a_runs_own_file_is_refused(run_copy, capsys, command, name):
    before = (run_copy / name).read_bytes()
    args = [a.replace("RUN", str(run_copy)) for a in command]
    assert main(args) == 2
    assert f"would replace {name} of the run directory" in capsys.readouterr().err
    assert (run_copy / name).read_bytes() == before
    assert main(["evaluate", str(run_copy)]) == 0


def test_save_input_never_overwrites_a_file_it_did_not_write(trained_run, tmp_path, capsys):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    picture = np.zeros((30, 30), np.uint8)
    picture[5:25, 10:20] = 255
    Image.fromarray(picture).save(photos / "photo.jpg")
    (photos / "photo.png").write_bytes(b"the user's own photo.png")
    args = ["predict", str(trained_run), str(photos / "photo.jpg"), "--save-input", str(photos), "--json"]
    assert main(args) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert (photos / "photo.png").read_bytes() == b"the user's own photo.png"
    assert Path(result["saved_input"]).name == "photo-2.png"
    assert Image.open(photos / "photo-2.png").size == (28, 28)


def test_the_api_trains_with_no_stdout_at_all(synthetic_dir, tmp_path, monkeypatch):
    """pythonw, or a daemon with its stdout closed: Python's sys.stdout is None, and a run still
    prints nothing and loses nothing (the command line stops instead: it was asked for output)."""
    monkeypatch.setattr(sys, "stdout", None)
    options = dict(data_dir=str(synthetic_dir), epochs=1, train_size=300, valid_size=100, batch_size=30)
    run = cnnlab.train(out=tmp_path / "run", **options)
    assert run.summary["epochs"] == 1
