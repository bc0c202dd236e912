"""``cnnlab train`` end to end on synthetic data: the run directory, exit codes, reruns."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from cnnlab.cli import main
from tests.test_resume import diverge_in_epoch

SMALL = ["--train-size", "400", "--valid-size", "100", "--batch-size", "50", "--quiet"]


def train(synthetic_dir, out, *extra):
    return main(["train", "--data-dir", str(synthetic_dir), "--out", str(out), *SMALL, *extra])


def test_a_run_without_a_validation_split_shows_none_and_writes_strict_json(synthetic_dir, tmp_path, capsys):
    # --valid-size 0 trains on every image: nothing may print, save or plot a validation score.
    out = tmp_path / "run"
    options = ["--train-size", "400", "--valid-size", "0", "--batch-size", "50", "--epochs", "2"]
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(out), *options]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all("train_acc" in line and "valid" not in line for line in lines)

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert (summary["valid_size"], summary["train_size"]) == (0, 400)
    assert summary["final_valid_accuracy"] is None and summary["best_valid_accuracy"] is None
    assert summary["best_valid_epoch"] is None and 0 <= summary["test_accuracy"] <= 1
    assert main(["report", str(out), "--output", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "test accuracy as training measured it" in html and "best validation accuracy" not in html


def test_run_directory_contents(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(synthetic_dir, out, "--epochs", "2", "--lr", "0.01", "--eval-test-every-epoch") == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed and str(out) in printed
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "metrics.csv",
        "summary.json",
        "checkpoint.pt",
        "loss.png",
        "classification_report.txt",
        "environment.json",
    } <= names
    with open(out / "metrics.csv") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_accuracy",
        "lr",
        "seconds",
        "test_accuracy",
    ]
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[1]["seconds"]) >= float(rows[0]["seconds"]) > 0  # cumulative
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "backend",
        "epochs",
        "test_accuracy",
        "final_valid_accuracy",
        "best_valid_accuracy",
        "seconds",
        "world_size",
    ):
        assert key in summary
    assert summary["test_accuracy"] > 0.5  # the synthetic classes are easy
    assert summary["world_size"] == 1 and summary["epochs"] == 2
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "torch_rng", "config"} <= set(checkpoint)
    assert checkpoint["epoch"] == 2
    report = (out / "classification_report.txt").read_text()
    assert "T-shirt/top" in report and "Ankle boot" in report


def test_run_clock_counts_from_the_given_start(synthetic_dir, tmp_path):
    """The CLI passes its own start time, so metrics.csv's seconds include start-up and data loading."""
    import time

    from cnnlab.training import run as runner
    from cnnlab.training.config import resolve

    config = resolve(
        {
            "data_dir": str(synthetic_dir),
            "out": str(tmp_path / "run"),
            "train_size": 400,
            "valid_size": 100,
            "batch_size": 50,
            "epochs": 1,
        }
    )
    session = runner.Session(log=lambda m: None, quiet=True, started=time.perf_counter() - 100.0)
    result = runner.train(config, session)
    assert 100.0 < result.history[0]["seconds"] <= result.summary["seconds"] < 160.0


def test_rerun_from_saved_config_gives_identical_metrics(synthetic_dir, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert train(synthetic_dir, first, "--epochs", "1", "--seed", "3") == 0
    assert main(["train", "--config", str(first / "config.json"), "--out", str(second), "--quiet"]) == 0
    strip = lambda p: [r[:-1] for r in csv.reader(open(p))]
    assert strip(first / "metrics.csv") == strip(second / "metrics.csv")


def test_existing_run_directory_is_never_overwritten(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert train(synthetic_dir, out, "--epochs", "1") == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"


def test_default_run_directories_are_unique(synthetic_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(["train", "--data-dir", str(synthetic_dir), *SMALL, "--epochs", "1"]) == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.split("-", 2)[-1].startswith("convnet") for r in runs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--batch-size", "0"], "--batch-size must be a whole number from 1 to 100000000"),
        (
            ["--train-size", "59000", "--valid-size", "2000"],
            "must fit in the 60,000 training images of fashion-mnist",
        ),
        (["--train-size", "1"], "--train-size must be a whole number from 2 to 100000000"),
        (["--model", "nope"], "--model must be one of"),
        (["--config", "/nonexistent/config.json"], "no such file"),
    ],
)
def test_invalid_options_exit_2_with_one_line_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["train", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("cnnlab: error:")
    assert not out.exists()


def test_divergence_exits_3_and_keeps_the_last_good_checkpoint(synthetic_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    diverge_in_epoch(monkeypatch, epoch=3, after_batches=0)
    code = train(synthetic_dir, out, "--epochs", "4")
    err = capsys.readouterr().err
    assert code == 3, err
    assert err.startswith("cnnlab: error: training diverged") and err.count("\n") == 1
    assert err.endswith(" epoch 2 is the last saved.\n")
    assert not (out / "summary.json").exists()
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and [r["epoch"] for r in checkpoint["history"]] == [1, 2]
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())
    assert main(["evaluate", str(out), "--out", str(tmp_path / "eval")]) == 0  # the saved run is usable


def test_batch_norm_never_sees_a_batch_of_one_image(synthetic_dir, tmp_path):
    # 101 images in batches of 50 would leave one image for the last step, which convnet-bn's
    # BatchNorm1d cannot normalise (torch raises): it joins the step before instead.
    out = tmp_path / "run"
    args = [
        "--model",
        "convnet-bn",
        "--epochs",
        "1",
        "--train-size",
        "101",
        "--valid-size",
        "100",
        "--batch-size",
        "50",
    ]
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(out), "--quiet", *args]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1


def test_data_errors_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (bad / name).write_bytes(b"not an idx file at all")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab",
            "train",
            "--data-dir",
            str(bad),
            "--out",
            str(tmp_path / "r"),
            "--train-size",
            "10",
            "--valid-size",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("cnnlab: error:") and "not an IDX file" in result.stderr


def test_help_lists_every_option_with_its_default():
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag in (
        "--model",
        "--optimizer",
        "--lr",
        "--momentum",
        "--betas",
        "--weight-decay",
        "--epochs",
        "--batch-size",
        "--train-size",
        "--valid-size",
        "--seed",
        "--out",
        "--data-dir",
        "--device",
        "--threads",
        "--preset",
        "--config",
        "--eval-test-every-epoch",
    ):
        assert flag in text
    assert text.count("default") >= 18
    assert "seed-first" in text


def test_data_where_and_verify(synthetic_dir, capsys):
    assert main(["data", "where", "--data-dir", str(synthetic_dir)]) == 0
    assert str(synthetic_dir) in capsys.readouterr().out
    # synthetic files do not carry the published checksums
    assert main(["data", "verify", "--data-dir", str(synthetic_dir)]) == 2
    captured = capsys.readouterr()
    assert "BAD" in captured.out and "failed verification" in captured.err
