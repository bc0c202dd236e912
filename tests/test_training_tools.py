"""Early stopping, EMA, TTA and the other options, end to end on synthetic data."""

import json

import pytest

from cnnlab.cli import main
from cnnlab.training.loop import best_epoch, should_stop

SMALL = ["--train-size", "400", "--valid-size", "100", "--batch-size", "50", "--quiet"]


def _rows(losses):
    return [{"epoch": i + 1, "valid_loss": v} for i, v in enumerate(losses)]


def test_should_stop_after_patience_epochs_without_a_new_low():
    assert best_epoch(_rows([0.5, 0.4, 0.45, 0.4])) == 2  # a tie is not an improvement
    assert not should_stop(_rows([0.5, 0.4, 0.45]), patience=2)
    assert should_stop(_rows([0.5, 0.4, 0.45, 0.41]), patience=2)
    assert not should_stop(_rows([0.5, 0.4, 0.45, 0.3]), patience=2)
    assert not should_stop(_rows([0.5, 0.6, 0.7]), patience=None)
    assert best_epoch(_rows([0.5, float("nan"), 0.45])) == 3  # an overflowed epoch is never the best
    assert best_epoch(_rows([float("nan"), 0.6])) == 2


def test_early_stopping_restores_the_best_weights(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    # A constant, far too high rate: the validation loss rises after the first epoch or so.
    code = main(
        [
            "train",
            "--data-dir",
            str(synthetic_dir),
            "--out",
            str(out),
            *SMALL[:-1],
            "--epochs",
            "8",
            "--patience",
            "2",
            "--optimizer",
            "sgd",
            "--lr",
            "0.5",
            "--schedule",
            "constant",
            "--momentum",
            "0.9",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    early = summary["early_stopping"]
    assert early["patience"] == 2 and early["restored_best_weights"] is True
    history = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    losses = [float(row[3]) for row in history]
    assert early["best_epoch"] == 1 + losses.index(min(losses))
    if early["stopped_early"]:
        assert len(history) == early["best_epoch"] + 2 and "stopped early" in printed
    # the reported test loss is that of the restored weights, not of the last epoch
    assert summary["test_loss"] < 10 * min(losses) + 1


@pytest.mark.parametrize(
    "extra",
    [
        ["--ema", "0.9", "--tta"],
        ["--translate", "2", "--hflip", "--label-smoothing", "0.1", "--grad-clip", "1.0", "--dropout", "0.2"],
        ["--schedule", "step", "--step-epochs", "1", "--gamma", "0.5", "--warmup-epochs", "0.5"],
        ["--model", "convnet-bn", "--precision", "32", "--no-channels-last"],
        ["--model", "vgg-mini", "--precision", "bf16", "--ema", "0"],  # 16 steps: too few for an EMA
        ["--model", "convnet-bn", "--precision", "16-mixed", "--grad-clip", "5"],
    ],
)
def test_options_train_and_are_recorded(synthetic_dir, tmp_path, extra):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(out),
                *SMALL,
                "--epochs",
                "2",
                "--lr",
                "0.01",
                *extra,
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    flags = [a for a in extra if a.startswith("--")]
    for flag in flags:
        key = flag[2:].replace("-", "_")
        assert key.removeprefix("no_") in config
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.3  # learns the easy synthetic classes


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ema", "1.5"], "--ema must be in (0, 1)"),
        (["--patience", "0"], "--patience must be a whole number from 1 to 10000"),
        (["--label-smoothing", "1"], "--label-smoothing"),
        (["--translate", "20"], "--translate"),
        (["--grad-clip", "-1"], "--grad-clip"),
        (["--pct-start", "0"], "--pct-start must be in (0, 1)"),
        (["--pct-start", "1.5"], "--pct-start must be in (0, 1)"),
        (
            ["--backend", "numpy", "--dropout", "0.5", "--epochs", "1"],
            "--dropout is not supported by the numpy",
        ),
    ],
)
def test_bad_tool_options(synthetic_dir, tmp_path, capsys, args, message):
    code = main(["train", "--data-dir", str(synthetic_dir), "--out", str(tmp_path / "r"), *SMALL, *args])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "precision, dtype, scaled",
    [
        ("32", "torch.float32", False),
        ("bf16", "torch.bfloat16", False),
        ("16-mixed", "torch.float16", True),
    ],
)
def test_precision_autocasts_the_forward_and_scales_fp16(precision, dtype, scaled):
    import numpy as np
    import torch

    from cnnlab.training.config import resolve
    from cnnlab.training.torch_engine import TorchEngine

    engine = TorchEngine(resolve({"precision": precision, "device": "cpu"}), steps_per_epoch=1)
    assert engine.scaler.is_enabled() is scaled
    with engine.autocast():
        out = engine.model(torch.zeros(2, 1, 28, 28).contiguous(memory_format=torch.channels_last))
    assert str(out.dtype) == dtype
    x, y = engine.to_native(np.zeros((4, 1, 28, 28), np.float32)), engine.to_native(np.arange(4))
    loss = engine.to_host([engine.train_batch(x, y)[0]])[0]
    assert np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in engine.model.parameters())  # master weights stay fp32


def test_auto_precision_follows_the_hardware():
    import torch

    from cnnlab.training.torch_engine import native_bf16, pick_precision

    cpu = torch.device("cpu")
    assert pick_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "32")
    assert pick_precision("16-mixed", cpu) == "16-mixed"
