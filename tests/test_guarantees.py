"""Nothing lost, nothing hung: one owner per run directory, SIGTERM handled like Ctrl+C, nothing
left behind by a run that saved no epoch, a full disk as one line, damaged files named as such.

The subprocess runs slow each optimizer step with a sleep (no arithmetic changes), so a second
process reliably meets the first one mid-run.
"""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab import fileio
from cnnlab.cli import main
from cnnlab.training import rundir
from tests.idx import corrupt_one_byte, write_synthetic_dataset
from tests.test_resume import SLOW_TRAIN

SMALL = [
    "--model",
    "convnet",
    "--train-size",
    "300",
    "--valid-size",
    "100",
    "--batch-size",
    "30",
    "--threads",
    "1",
    "--quiet",
]


def start_slow(synthetic_dir, *args):
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_TRAIN, "train", "--data-dir", str(synthetic_dir), *SMALL, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def run_cli(*args):
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stderr


def test_two_runs_racing_for_one_out_and_sigterm(synthetic_dir, tmp_path):
    """The second run and a second --resume are refused before any work; SIGTERM then saves what is
    complete, exits 143 with the resume command, and that command finishes the run."""
    run = tmp_path / "mix"
    first = start_slow(synthetic_dir, "--epochs", "40", "--out", str(run))
    try:
        wait_for(run / "checkpoint.pt")
        code, err = run_cli(
            "train", "--model", "seed", "--epochs", "1", "--out", str(run), "--data-dir", str(synthetic_dir)
        )
        assert code == 2 and "in use by another cnnlab process" in err and err.count("\n") == 1, err
        code, err = run_cli("train", "--resume", str(run))
        assert code == 2 and "in use by another cnnlab process" in err, err
        assert json.loads((run / "config.json").read_text())["model"] == "convnet"  # untouched
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 143, err
    assert "Continue with: cnnlab train --resume" in err and err.count("\n") == 1, err
    command = err.strip().split("Continue with: ")[1].split()
    assert command[:3] == ["cnnlab", "train", "--resume"]
    code, err = run_cli(*command[1:])
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["epochs"] == 40


def test_interrupt_before_the_first_epoch_leaves_nothing_behind(synthetic_dir, tmp_path, monkeypatch, capsys):
    from cnnlab.training import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train_one_epoch", interrupted)
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "2", *SMALL]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "nothing was saved" in err and "--resume" not in err, err
    assert not run.exists()
    monkeypatch.undo()
    assert main(args) == 0  # the same command simply works again


def test_divergence_in_the_first_epoch_leaves_nothing_behind(synthetic_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--lr", "1e12", "--epochs", "2"]
    assert main([*args, *SMALL]) == 3
    assert "nothing was saved" in capsys.readouterr().err
    assert not run.exists()


def test_resume_of_a_finished_run_changes_nothing(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "done"
    shutil.copytree(trained_run, run)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(["train", "--resume", str(run)]) == 0
    assert "nothing to resume" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != rundir.LOCK} == {
        k: v for k, v in before.items() if k != rundir.LOCK
    }


class _DiskFull:
    """Makes the n-th write of a file named ``name`` fail with ENOSPC, as a full disk does."""

    def __init__(self, fail_at: int, name: str = "checkpoint.pt"):
        self.calls, self.fail_at, self.name = 0, fail_at, name
        self.original = fileio.os.fdopen

    def __call__(self, fd, mode="r", *args, **kwargs):
        handle = self.original(fd, mode, *args, **kwargs)
        if f"/.{self.name}." in os.readlink(f"/proc/self/fd/{fd}"):  # write_atomic's temporary name
            self.calls += 1
            if self.calls == self.fail_at:

                def full(data):
                    raise OSError(errno.ENOSPC, "No space left on device")

                handle.write = full
        return handle


def _full_disk(monkeypatch, fail_at: int, name: str = "checkpoint.pt") -> None:
    """A full disk for plain writes (the ``fail_at``-th of ``name``) and for torch.save to a file."""
    import io

    import torch

    real_save = torch.save

    def save(obj, f, *args, **kwargs):  # what torch.save does when its zip writer meets a full disk
        if not isinstance(f, io.BytesIO):
            raise RuntimeError(
                "[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing"
            )
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(fileio.os, "fdopen", _DiskFull(fail_at, name))


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="needs /proc to name a descriptor's file"
)


@needs_proc
def test_full_disk_while_saving_a_checkpoint(synthetic_dir, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    _full_disk(monkeypatch, fail_at=2)
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "3", *SMALL]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "epoch 1 is the last saved" in err
    assert f"cnnlab train --resume {run}" in err
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # space again: it finishes


@needs_proc
@pytest.mark.parametrize(
    "name, fail_at, saved",
    [
        ("metrics.csv", 1, "epoch 1 is the last saved"),  # its repair, before any resumed epoch
        ("checkpoint.pt", 1, "epoch 1 is the last saved"),  # the first resumed epoch's checkpoint
        ("metrics.csv", 2, "epoch 2 is the last saved"),  # just after that checkpoint
        ("loss.png", 1, "Every epoch is saved"),  # the final report
    ],
)
def test_full_disk_during_a_resumed_run(synthetic_dir, tmp_path, monkeypatch, capsys, name, fail_at, saved):
    """One line, exit 2 and the resume command; what was saved is intact, and that command finishes."""
    import hashlib

    run = tmp_path / "run"
    with monkeypatch.context() as patch:  # a run of 3 epochs that saved epoch 1 only
        _full_disk(patch, fail_at=2)
        assert (
            main(["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "3", *SMALL]) == 2
        )
    checkpoint = hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest()
    capsys.readouterr()
    with monkeypatch.context() as patch:
        _full_disk(patch, fail_at, name)
        assert main(["train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and saved in err, err
    assert f"cnnlab train --resume {run}" in err, err
    if saved.startswith("epoch 1"):  # the checkpoint resumed from is untouched
        assert hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest() == checkpoint
    assert not list(run.glob(".*.tmp"))
    command = err.split("cnnlab train --resume ")[1].split()[0]
    assert main(["train", "--resume", command, "--quiet"]) == 0  # space again: the printed command finishes
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3
    assert [row["epoch"] for row in csv.DictReader((run / "metrics.csv").open())] == ["1", "2", "3"]


@needs_proc
@pytest.mark.parametrize("name", ["config.json", "environment.json"])
def test_full_disk_before_the_first_epoch_leaves_no_dead_end(
    synthetic_dir, tmp_path, monkeypatch, capsys, name
):
    """A full disk while a new run writes its config or environment: one line, exit 2, the directory
    removed, and the same command, run again with space, trains."""
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "1", *SMALL]
    with monkeypatch.context() as patch:
        _full_disk(patch, 1, name)
        assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert "run the same command again" in err and not run.exists()
    assert main(args) == 0


def test_a_damaged_config_json_in_a_run_is_named_as_the_runs(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "damaged"
    shutil.copytree(trained_run, run)
    (run / "config.json").write_text("{not json")
    for command in (["train", "--resume", str(run)], ["evaluate", str(run)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"{run / 'config.json'} is not a valid cnnlab config" in err and "--config" not in err, err


def test_a_checkpoint_whose_config_is_not_json(trained_run, tmp_path, capsys):
    import shutil

    import torch

    run = tmp_path / "damaged"
    shutil.copytree(trained_run, run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload["config"] = "{half"
    torch.save(payload, run / "checkpoint.pt")
    assert main(["evaluate", str(run)]) == 2
    assert "checkpoint.pt is damaged" in capsys.readouterr().err


def test_rerunning_a_saved_config_gets_a_new_directory(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(trained_run / "config.json"), "--quiet"]) == 0
    out = capsys.readouterr().out
    saved = out.strip().splitlines()[-1].removeprefix("run saved to: ")
    assert saved != str(trained_run) and (tmp_path / saved).is_dir()


@pytest.mark.parametrize("columns", [80, 0])
def test_every_epoch_line_is_whole_on_a_narrow_or_unknown_terminal(synthetic_dir, tmp_path, columns):
    """A pseudo-terminal of 80 columns (and one that reports no width): each epoch's line, with
    its validation accuracy, appears in full."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: cnnlab on the pseudo-terminal
        import fcntl
        import struct
        import termios

        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.environ.pop("COLUMNS", None)
        args = ["train", "--data-dir", str(synthetic_dir), "--out", str(tmp_path / "r"), "--epochs", "2"]
        os.execv(sys.executable, [sys.executable, "-m", "cnnlab", *args, *SMALL[:-1]])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    text = output.decode(errors="replace").replace("\r", "\n")
    for epoch in (1, 2):
        line = next((ln for ln in text.splitlines() if ln.startswith(f"epoch {epoch}  train_loss")), "")
        assert "valid_acc" in line and line.rstrip().endswith("s"), text[-2000:]


def test_swapped_train_and_test_files_are_refused_on_every_load(synthetic_dir, tmp_path, capsys):
    import shutil

    from cnnlab import data

    swapped = tmp_path / "swapped"
    shutil.copytree(synthetic_dir, swapped)
    for kind in ("images", "labels"):
        train, test = swapped / data.FILES[f"train_{kind}"].name, swapped / data.FILES[f"test_{kind}"].name
        train.rename(tmp_path / "t"), test.rename(train), (tmp_path / "t").rename(test)
    assert (
        main(["train", "--data-dir", str(swapped), "--out", str(tmp_path / "r"), "--train-size", "50"]) == 2
    )
    err = capsys.readouterr().err
    assert "look swapped" in err and "cnnlab data verify" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_corrupt_file_of_the_published_size_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """One flipped bit, the same size and header: `train` refuses it with one line before making anything."""
    from cnnlab import data

    directory = tmp_path / "data"
    for key, spec in write_synthetic_dataset(directory).items():
        monkeypatch.setitem(data.FILES, key, spec)  # these files are now the published ones
    corrupt_one_byte(directory / data.FILES["train_images"].name)
    assert main(["train", "--data-dir", str(directory), "--out", str(tmp_path / "r"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "SHA-256 differs" in err and "cnnlab data download fashion-mnist --data-dir" in err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


PIL_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]


@pytest.mark.parametrize("mode", PIL_MODES)
def test_every_pillow_mode_reaches_the_model_by_its_real_range(trained_run, tmp_path, mode, capsys):
    """A light square on black in each mode and bit depth: what the model sees (--save-input) is the
    same 28x28 picture, never a uniform (clipped) one."""
    import numpy as np
    from PIL import Image

    # A dark background: 3277 of 65535 in 16 bits, which "L" clips to 255 (1-bit images have no grey).
    gray = np.full((40, 40), 0.0 if mode == "1" else 0.05)
    gray[10:30, 12:28] = 0.95  # the item
    scale = {"I;16": 65535, "I": 65535, "F": 1.0}.get(mode, 255)
    if mode == "I;16":
        image = Image.fromarray((gray * scale).astype(np.uint16))
    elif mode == "I":
        image = Image.fromarray((gray * scale).astype(np.int32))
    elif mode == "F":
        image = Image.fromarray(gray.astype(np.float32))
    else:
        image = Image.fromarray((gray * 255).astype(np.uint8)).convert(mode)
    path = tmp_path / ("in.tiff" if mode in ("CMYK", "I", "F") else "in.png")
    image.save(path)
    assert Image.open(path).mode == mode
    seen = tmp_path / "seen"
    assert main(["predict", str(trained_run), str(path), "--save-input", str(seen), "--no-invert"]) == 0
    saw = np.asarray(Image.open(seen / "in.png"))
    assert saw.max() == 255 and saw.min() == 0 and (saw > 127).mean() > 0.3, mode


def test_save_input_never_overwrites_an_input_with_the_same_name(trained_run, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for folder, value in (("a", 200), ("b", 90)):
        (tmp_path / folder).mkdir()
        picture = np.zeros((30, 30), np.uint8)
        picture[5:25, 5 : 5 + value // 10] = 255
        Image.fromarray(picture).save(tmp_path / folder / "shirt.png")
    seen = tmp_path / "seen"
    inputs = [str(tmp_path / "a" / "shirt.png"), str(tmp_path / "b" / "shirt.png")]
    assert main(["predict", str(trained_run), *inputs, "--save-input", str(seen), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [Path(r["saved_input"]).name for r in results] == ["shirt.png", "shirt-2.png"]
    assert not np.array_equal(
        np.asarray(Image.open(seen / "shirt.png")), np.asarray(Image.open(seen / "shirt-2.png"))
    )


def test_a_relative_data_dir_is_recorded_absolute_and_found_from_elsewhere(
    synthetic_dir, tmp_path, monkeypatch
):
    import shutil

    work = tmp_path / "work"
    shutil.copytree(synthetic_dir, work / "data")
    monkeypatch.chdir(work)
    assert main(["train", "--data-dir", "data", "--out", "run", *SMALL, "--epochs", "1"]) == 0
    saved = json.loads((work / "run" / "config.json").read_text())["data_dir"]
    assert saved == str(work / "data")
    monkeypatch.chdir(tmp_path)
    assert main(["show", str(work / "run"), "filters"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--padding", "20000"], "--padding: the padding is at most 32"),
        (["--padding", "100000"], "--padding: the padding is at most 32"),
        (["--stride", "100000"], "--stride: the stride is at most 64"),
        (["--dilation", "99999999999999"], "--dilation: the dilation is at most 16"),
        (["--input", json.dumps([[0] * 65] * 2)], "--input: the input side is at most 64"),
        (
            ["--kernel", json.dumps([[1] * 16] * 16), "--input", json.dumps([[0] * 20] * 20)],
            "--kernel: the kernel",
        ),
        (
            ["--input", "[[1e308,1e308],[1e308,1e308]]", "--kernel", "[[1e308,1e308],[1e308,1e308]]"],
            "overflow",
        ),
        (["--bias", "inf"], "--bias must be finite"),
        (["--bias", "nan"], "--bias must be finite"),
    ],
)
def test_convolve_refuses_what_a_demo_cannot_show(args, message, capsys):
    assert main(["convolve", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_convolve_at_its_limits_still_works(capsys):
    assert (
        main(["convolve", "--input", json.dumps([[1] * 64] * 64), "--kernel", "[[1]]", "--padding", "0"]) == 0
    )
    assert "agree" in capsys.readouterr().out


def test_an_interrupt_while_testing_the_final_weights_says_how_to_finish(
    synthetic_dir, tmp_path, monkeypatch, capsys
):
    from cnnlab.training import run as runner

    real_evaluate = runner.evaluate

    def interrupted(engine, x, y):
        if len(y) == 200:  # the synthetic test set: the final test, after every epoch is saved
            raise KeyboardInterrupt
        return real_evaluate(engine, x, y)

    monkeypatch.setattr(runner, "evaluate", interrupted)
    run = tmp_path / "run"
    assert (
        main(["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "2", *SMALL]) == 130
    )
    err = capsys.readouterr().err
    assert "every epoch is saved" in err and f"cnnlab train --resume {run}" in err and err.count("\n") == 1
    assert not (run / "summary.json").exists()
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2
