"""Bad input everywhere: one clear line, exit 2, and nothing already saved is lost.

Tests run as root in CI, where chmod cannot make a directory read-only; ``readonly_dir``
then also makes the filesystem calls fail as they would for any other user (EACCES).
"""

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from cnnlab import models
from cnnlab.cli import main

# Every command that reads a run directory, with the arguments it needs after RUN_DIR.
READERS = [["evaluate"], ["report"], ["predict", "IMAGE"], ["export", "--format", "safetensors"]]


def run_command(command, run_dir, image, tmp_path):
    argv = [command[0], str(run_dir)] + [str(image) if a == "IMAGE" else a for a in command[1:]]
    if command[0] == "export":
        argv += ["--output", str(tmp_path / "out.safetensors")]
    if command[0] == "report":
        argv += ["--output", str(tmp_path / "report.html")]
    if command[0] == "evaluate":
        argv += ["--out", str(tmp_path / "eval")]
    return main(argv)


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "item.png"
    Image.new("L", (40, 40), 255).save(path)
    return path


@pytest.fixture
def run_copy(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_missing_run_directory(command, tmp_path, image, capsys):
    assert run_command(command, tmp_path / "nope", image, tmp_path) == 2
    one_error_line(capsys, "does not exist")


def test_resume_of_a_missing_or_unfinished_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    one_error_line(capsys, "does not exist")
    (tmp_path / "fresh").mkdir()
    assert main(["train", "--resume", str(tmp_path / "fresh")]) == 2
    one_error_line(capsys, "has no config.json")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "config.json").write_text("{ not json"), "not valid JSON"),
        (
            lambda run: (run / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:5000]),
            "corrupt",
        ),
        (lambda run: (run / "checkpoint.pt").unlink(), "checkpoint.pt is missing"),
        (
            lambda run: (run / "config.json").write_text('{"model": "convnet", "lr": -1}'),
            "--lr must be a positive",
        ),
    ],
    ids=["config-not-json", "checkpoint-truncated", "checkpoint-missing", "config-invalid"],
)
@pytest.mark.parametrize("command", READERS + [["train", "--resume"]], ids=lambda c: c[0])
def test_corrupt_run_directory_is_reported_and_left_alone(
    command, damage, message, run_copy, image, tmp_path, capsys
):
    damage(run_copy)
    before = snapshot(run_copy)
    if command[0] == "train":
        code = main(["train", "--resume", str(run_copy)])
    else:
        code = run_command(command, run_copy, image, tmp_path)
    assert code == 2
    one_error_line(capsys, message)
    assert snapshot(run_copy) == before


@pytest.fixture
def other_model_run(synthetic_dir, tmp_path, monkeypatch):
    """A finished run of a different architecture (registered for this test only)."""
    from torch import nn

    monkeypatch.setitem(
        models.MODELS,
        "tiny",
        models.ModelSpec(
            "tiny",
            "a linear classifier",
            lambda nn_, shape, classes, dropout=0.0: nn.Sequential(nn.Flatten(), nn.Linear(784, classes)),
        ),
    )
    run = tmp_path / "tiny"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(run),
                "--model",
                "tiny",
                "--epochs",
                "1",
                "--train-size",
                "100",
                "--valid-size",
                "20",
                "--quiet",
            ]
        )
        == 0
    )
    return run


@pytest.mark.parametrize("command", READERS + [["train", "--resume"]], ids=lambda c: c[0])
def test_checkpoint_from_another_model(command, other_model_run, run_copy, image, tmp_path, capsys):
    shutil.copy(other_model_run / "checkpoint.pt", run_copy / "checkpoint.pt")
    capsys.readouterr()
    if command[0] == "train":
        assert main(["train", "--resume", str(run_copy)]) == 2
        one_error_line(capsys, "different config")
    else:
        assert run_command(command, run_copy, image, tmp_path) == 2
        one_error_line(capsys, "holds weights of model 'tiny'", "says model 'convnet'")


def test_checkpoint_whose_weights_do_not_fit_the_model(other_model_run, run_copy, tmp_path, image, capsys):
    """A checkpoint that claims the right model but holds another one's weights."""
    mine = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    theirs = torch.load(other_model_run / "checkpoint.pt", weights_only=True)
    theirs["config"] = mine["config"]
    torch.save(theirs, run_copy / "checkpoint.pt")
    capsys.readouterr()
    assert run_command(["evaluate"], run_copy, image, tmp_path) == 2
    one_error_line(capsys, "does not fit model 'convnet'")
    assert main(["train", "--resume", str(run_copy)]) == 2
    one_error_line(capsys, "does not fit model 'convnet'")


def test_not_an_image(trained_run, tmp_path, capsys):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\x00" * 100)
    assert main(["predict", str(trained_run), str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"cnnlab: error: {bad} is not an image cnnlab can read; give a PNG or JPEG"
    assert err[1] == "cnnlab: error: 1 of 1 file(s) could not be classified"


@pytest.fixture
def readonly_dir(tmp_path, monkeypatch):
    """A directory nobody may write into: chmod for ordinary users, and for root (whom chmod does
    not stop) the EACCES an ordinary user would get from mkstemp and mkdir inside it."""
    directory = tmp_path / "readonly"
    directory.mkdir()
    (directory / "old.txt").write_text("kept")
    directory.chmod(0o555)
    if os.geteuid() == 0:
        inside = lambda p: Path(p).resolve().is_relative_to(directory.resolve())
        real_mkstemp, real_mkdir = tempfile.mkstemp, os.mkdir

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and inside(dir):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        def mkdir(path, *args, **kwargs):
            if inside(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "mkdir", mkdir)
    yield directory
    directory.chmod(0o755)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["evaluate", "RUN", "--out", "RO"], "--out"),
        (["evaluate", "RUN", "--out", "RO/sub"], "--out"),
        (["report", "RUN", "--output", "RO/report.html"], "--output"),
        (["export", "RUN", "--format", "onnx", "--output", "RO/model.onnx"], "--output"),
        (["export", "RUN", "--format", "safetensors", "--output", "RO/w.safetensors"], "--output"),
        (["predict", "RUN", "IMAGE", "--save-input", "RO"], "--save-input"),
        (
            ["train", "--data-dir", "DATA", "--out", "RO/run", "--train-size", "50", "--valid-size", "10"],
            "--out",
        ),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_read_only_output_directory(argv, flag, readonly_dir, trained_run, synthetic_dir, image, capsys):
    subs = {"RUN": str(trained_run), "IMAGE": str(image), "DATA": str(synthetic_dir)}
    argv = [subs.get(a, a.replace("RO", str(readonly_dir))) for a in argv]
    before = snapshot(trained_run)
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert flag in line or "writable" in line, line
    assert sorted(p.name for p in readonly_dir.iterdir()) == ["old.txt"]
    assert snapshot(trained_run) == before


def disk_full_on(monkeypatch, name: str, after: int = 0):
    """Make fsync of temporary files for ``name`` fail with ENOSPC, after ``after`` successes:
    fsync is where a full disk surfaces for buffered writes."""
    real_fsync, calls = os.fsync, {"n": 0}

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{name}."):
            calls["n"] += 1
            if calls["n"] > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name the file being synced")
def test_disk_full_while_writing_a_report_keeps_the_old_one(run_copy, monkeypatch, capsys):
    (run_copy / "report.html").write_text("the previous report")
    disk_full_on(monkeypatch, "report.html")
    assert main(["report", str(run_copy)]) == 2
    one_error_line(capsys, "No space left on device", "previous version is intact")
    assert (run_copy / "report.html").read_text() == "the previous report"
    assert not list(run_copy.glob(".*.tmp"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name the file being synced")
def test_disk_full_while_checkpointing_keeps_the_last_epoch_and_resumes(
    synthetic_dir, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    options = ["--train-size", "200", "--valid-size", "50", "--batch-size", "50", "--epochs", "3", "--quiet"]
    disk_full_on(monkeypatch, "checkpoint.pt", after=1)  # epoch 1 saves, epoch 2 finds the disk full
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(run), *options]) == 2
    one_error_line(
        capsys, "No space left on device", "epoch 1 is the last saved", f"cnnlab train --resume {run}"
    )
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert (run / "metrics.csv").read_text().count("\n") == 2  # header + epoch 1
    monkeypatch.undo()  # space freed
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    reference = tmp_path / "reference"
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(reference), *options]) == 0
    strip = lambda p: [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]
    assert strip(run / "metrics.csv") == strip(reference / "metrics.csv")
