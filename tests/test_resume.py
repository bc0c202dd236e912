"""Safe to interrupt, repeatable, guarded: SIGKILL + resume, Ctrl+C, SIGINT and SIGTERM inside an
evaluation, determinism, divergence.

The subprocess runs slow each optimizer step down with a sleep (which changes no arithmetic),
so the test can kill it reliably between the first checkpoint and the end of the run; or it stalls
one evaluation, so a signal lands inside it.
"""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from cnnlab.cli import main

OPTIONS = [
    "--train-size",
    "300",
    "--valid-size",
    "100",
    "--batch-size",
    "30",
    "--epochs",
    "3",
    "--seed",
    "5",
    "--threads",
    "1",
    "--quiet",
]

# Ctrl+C as a terminal delivers it to a foreground command. A shell without job control starts a
# background command (`pytest ... &` in a script) with SIGINT ignored, and Python keeps that, so each
# child below puts Python's own handler back before it runs cnnlab.
INTERRUPTIBLE = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"

# Runs `cnnlab train` with every optimizer step slowed down by a sleep, so epochs take a while.
SLOW_TRAIN = INTERRUPTIBLE + textwrap.dedent("""
    import sys, time
    from cnnlab.training.numpy_engine import NumpyEngine
    from cnnlab.training.torch_engine import TorchEngine
    def slowed(step):
        def slow(self, x, y):
            time.sleep(0.03)
            return step(self, x, y)
        return slow
    TorchEngine.train_batch = slowed(TorchEngine.train_batch)
    NumpyEngine.train_batch = slowed(NumpyEngine.train_batch)
    from cnnlab.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def metrics_without_seconds(run):
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def weights(run):
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def start_slow_run(synthetic_dir, out, extra=()):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_TRAIN,
            "train",
            "--data-dir",
            str(synthetic_dir),
            "--out",
            str(out),
            *OPTIONS,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_first_checkpoint(process, run, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (run / "checkpoint.pt").exists():
        assert process.poll() is None, f"the run ended before its first checkpoint: {process.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(synthetic_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(run), *OPTIONS]) == 0
    return run


def test_same_seed_and_options_give_identical_metrics(synthetic_dir, tmp_path, uninterrupted):
    again = tmp_path / "again"
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(again), *OPTIONS]) == 0
    assert metrics_without_seconds(again) == metrics_without_seconds(uninterrupted)
    assert_same_weights(again, uninterrupted)


def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(
    synthetic_dir, tmp_path, uninterrupted
):
    run = tmp_path / "killed"
    process = start_slow_run(synthetic_dir, run)
    wait_for_first_checkpoint(process, run)
    time.sleep(0.15)  # into the middle of epoch 2
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists()
    saved = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= saved < 3, "the kill should land before the last epoch"

    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert metrics_without_seconds(run) == metrics_without_seconds(uninterrupted)
    assert_same_weights(run, uninterrupted)


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(synthetic_dir, tmp_path, uninterrupted):
    run = tmp_path / "interrupted"
    process = start_slow_run(synthetic_dir, run)
    wait_for_first_checkpoint(process, run)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"cnnlab train --resume {run}" in err
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert metrics_without_seconds(run) == metrics_without_seconds(uninterrupted)


# Runs `cnnlab` (argv[3:]) whose argv[2]-th evaluation writes its number of images into the file argv[1]
# and waits there: a signal sent once that file exists lands inside the evaluation, every time.
STALLED_EVALUATION = INTERRUPTIBLE + textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cnnlab.training.torch_engine import TorchEngine
    marker, when, calls, logits = Path(sys.argv[1]), int(sys.argv[2]), [], TorchEngine.logits
    def stalled(self, x, *args, **kwargs):
        calls.append(len(x))
        if len(calls) == when:
            marker.write_text(str(len(x)))
            time.sleep(120)
        return logits(self, x, *args, **kwargs)
    TorchEngine.logits = stalled
    from cnnlab.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def run_as_printed(command: str):
    """Run a command cnnlab printed (``cnnlab ...``) as a user would, in a new process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    words = command.split()
    assert words[0] == "cnnlab", command
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", *words[1:]], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    "sig, validation",
    [
        pytest.param(signal.SIGINT, 2, id="SIGINT-epoch-2"),
        pytest.param(signal.SIGTERM, 2, id="SIGTERM-epoch-2"),
        pytest.param(signal.SIGTERM, 1, id="SIGTERM-epoch-1"),
    ],
)
def test_a_signal_during_an_epochs_evaluation_then_the_printed_command(
    synthetic_dir, tmp_path, uninterrupted, sig, validation
):
    """SIGINT or SIGTERM while epoch 2 (or 1) is evaluated on the validation images: what is complete
    is saved, one line gives the command to go on, and that command ends where an uninterrupted run does."""
    run, marker = tmp_path / "run", tmp_path / "evaluating"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), *OPTIONS]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", STALLED_EVALUATION, str(marker), str(validation), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() or not marker.read_text():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the evaluation never started"
            time.sleep(0.01)
        assert marker.read_text() == "100"  # the validation images (--valid-size 100)
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == (130 if sig == signal.SIGINT else 143), err
    assert "Traceback" not in err and err.count("\n") == 1, err
    if validation == 1:  # nothing was complete: nothing is left behind, and the same command starts over
        assert "nothing was saved" in err and "run the same command again" in err and not run.exists(), err
        run_as_printed("cnnlab " + " ".join(args))
    else:
        assert "epoch 1 is the last saved" in err, err
        assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
        run_as_printed(err.split("Continue with: ")[1].strip())
    assert metrics_without_seconds(run) == metrics_without_seconds(uninterrupted)
    assert_same_weights(run, uninterrupted)


def test_resume_after_a_kill_between_checkpoint_and_metrics_rewrites_the_metrics(
    synthetic_dir, tmp_path, uninterrupted
):
    """The checkpoint is written first; a kill before metrics.csv leaves it one epoch behind."""
    run = tmp_path / "lagging"
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(run), *OPTIONS]) == 0
    lines = (run / "metrics.csv").read_text().splitlines()
    (run / "metrics.csv").write_text("\n".join(lines[:-1]) + "\n")
    (run / "summary.json").unlink()
    (run / ".checkpoint.pt.half.tmp").write_bytes(b"what a kill mid-write leaves")
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert not (run / ".checkpoint.pt.half.tmp").exists()
    assert metrics_without_seconds(run) == metrics_without_seconds(uninterrupted)
    assert (run / "summary.json").exists()


def diverge_in_epoch(monkeypatch, epoch: int, after_batches: int) -> None:
    """Make the torch engine's loss NaN from batch ``after_batches + 1`` of ``epoch`` on (the steps
    themselves are real), as a rate that blows up mid-run does, after good epochs were saved."""
    from cnnlab.training.torch_engine import TorchEngine

    start, step = TorchEngine.start_epoch, TorchEngine.train_batch

    def start_epoch(self, number):
        self.epoch_now, self.batches_now = number, 0
        start(self, number)

    def train_batch(self, x, y):
        loss, correct = step(self, x, y)
        self.batches_now += 1
        bad = (self.epoch_now, self.batches_now) > (epoch, after_batches)
        return (float("nan") if bad else loss), correct

    monkeypatch.setattr(TorchEngine, "start_epoch", start_epoch)
    monkeypatch.setattr(TorchEngine, "train_batch", train_batch)


def test_divergence_exits_3_keeps_the_last_good_checkpoint_and_it_resumes_cleanly(
    synthetic_dir, tmp_path, capsys, monkeypatch, uninterrupted
):
    run = tmp_path / "diverged"
    diverge_in_epoch(monkeypatch, epoch=2, after_batches=2)  # epoch 1 is good and saved
    code = main(["train", "--data-dir", str(synthetic_dir), "--out", str(run), *OPTIONS])
    err = capsys.readouterr().err
    assert code == 3, err
    assert err == (
        "cnnlab: error: training diverged: the loss became nan in epoch 2; lower --lr. "
        "epoch 1 is the last saved.\n"
    )
    assert not (run / "summary.json").exists()
    # Epoch 1's checkpoint and metrics are there, untouched by the half-trained epoch 2.
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert metrics_without_seconds(run) == metrics_without_seconds(uninterrupted)[:1]
    # Resumed (without the fault), it ends exactly as a run that never diverged.
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert metrics_without_seconds(run) == metrics_without_seconds(uninterrupted)
    assert_same_weights(run, uninterrupted)


def test_every_global_rng_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from cnnlab.training.rng import capture_rng, restore_rng

    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state
    np.random.standard_normal()  # noqa: NPY002 (the global state is under test)
    path = tmp_path / "rng.pt"
    torch.save(capture_rng(), path)
    expected = (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist())  # noqa: NPY002
    restore_rng(torch.load(path, weights_only=True))
    assert (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist()) == expected  # noqa: NPY002


# Every option that keeps state across epochs or draws random numbers: augmentation, dropout,
# EMA weights, early stopping's best weights.
STATEFUL = ["--translate", "2", "--hflip", "--dropout", "0.3", "--ema", "0.9", "--patience", "2", "--tta"]
# The speed recipes' options: the residual model at a width, reflect padding, cutout, shifted TTA, in
# float32 (the convnet case runs at --precision auto: bf16 where the CPU has it, as on the dev machine).
RECIPE = [*STATEFUL, "--model", "resnet-mini", "--width", "0.25", "--pad-mode", "reflect", "--cutout", "8"]
RECIPE += ["--tta-shift", "1", "--precision", "32", "--whiten"]
# The same recipe on the from-scratch engine: its augmentation and dropout draws come from NumPy
# Generators seeded from (seed, epoch), so a resumed run repeats them too.
NUMPY_RECIPE = [*STATEFUL, "--backend", "numpy", "--model", "resnet-mini", "--width", "0.5"]
NUMPY_RECIPE += ["--pad-mode", "reflect", "--cutout", "6", "--tta-shift", "1", "--whiten"]


@pytest.mark.parametrize(
    "stateful",
    [STATEFUL, RECIPE, NUMPY_RECIPE],
    ids=["convnet", "resnet-mini-recipe", "numpy-resnet-mini-recipe"],
)
def test_sigkill_and_resume_with_augmentation_dropout_ema_and_early_stopping(
    synthetic_dir, tmp_path, stateful
):
    reference = tmp_path / "reference"
    assert (
        main(["train", "--data-dir", str(synthetic_dir), "--out", str(reference), *OPTIONS, *stateful]) == 0
    )
    learned = metrics_without_seconds(reference)
    assert float(learned[-1]["train_loss"]) < float(learned[0]["train_loss"])  # it trains
    run = tmp_path / "killed"
    process = start_slow_run(synthetic_dir, run, stateful)
    wait_for_first_checkpoint(process, run)
    time.sleep(0.15)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert metrics_without_seconds(run) == metrics_without_seconds(reference)
    assert_same_weights(run, reference)
    final = lambda r: torch.load(r / "checkpoint.pt", weights_only=True)
    for key in ("ema", "best_model"):
        for name, tensor in final(reference)[key].items():
            assert torch.equal(final(run)[key][name], tensor), (key, name)


def test_runs_saved_before_newer_options_existed_still_load_and_resume(synthetic_dir, tmp_path):
    """A run directory from an older cnnlab lacks the options added since (pct_start, tensorboard):
    it still evaluates, and --resume continues it with those options at their defaults."""
    import json

    run = tmp_path / "old"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), *OPTIONS]
    assert main([*args[:-1], "--epochs", "2", "--quiet"]) == 0
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    config = json.loads(payload["config"])
    config["epochs"] = 3  # as if it had been stopped after epoch 2 of 3
    for newer in ("pct_start", "tensorboard"):
        config.pop(newer)
    payload["config"] = json.dumps(config)
    torch.save(payload, run / "checkpoint.pt")
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").unlink()
    assert main(["evaluate", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3
