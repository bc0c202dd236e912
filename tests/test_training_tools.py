"""Early stopping, EMA, TTA and the other options, end to end on synthetic data."""

import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.training.loop import evaluate

SMALL = ["--train-size", "400", "--valid-size", "100", "--batch-size", "50", "--quiet"]


def test_early_stopping_restores_the_best_weights(early_stopped_run, synthetic_dir):
    out, printed = early_stopped_run
    summary = json.loads((out / "summary.json").read_text())
    early = summary["early_stopping"]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    history = checkpoint["history"]
    losses = [row["valid_loss"] for row in history]
    assert early["patience"] == 2 and early["best_epoch"] == 1 + losses.index(min(losses))
    assert early["stopped_early"] and len(history) == early["best_epoch"] + 2 and "stopped early" in printed

    # The weights kept as the best are the best epoch's: they score its validation loss exactly.
    engine, data = engine_and_data(out, synthetic_dir)
    engine.eval_model.load_state_dict(checkpoint["best_model"])  # the EMA average: what is evaluated
    assert evaluate(engine, data.valid_x, data.valid_y).loss == history[early["best_epoch"] - 1]["valid_loss"]
    # The test loss reported is that of the restored best weights, not of the last epoch's.
    assert summary["test_loss"] == evaluate(engine, data.test_x, data.test_y).loss
    engine.load_state_dict(checkpoint)  # the last epoch's
    assert evaluate(engine, data.valid_x, data.valid_y).loss == history[-1]["valid_loss"]
    assert summary["test_loss"] != evaluate(engine, data.test_x, data.test_y).loss


def engine_and_data(run, data_dir):
    """A fresh torch engine with ``run``'s config (its precision too) and the run's own split, as
    the engine sees it: what the run evaluated with, so losses compare exactly."""
    from cnnlab.data.arrays import load_split
    from cnnlab.training.config import config_of_run
    from cnnlab.training.torch_engine import TorchEngine

    config = config_of_run(run)
    engine = TorchEngine(config, steps_per_epoch=1)
    data = load_split(config.resolved_train_size, config.valid_size, config.seed, data_dir)
    for name in ("train_x", "valid_x", "test_x"):
        setattr(data, name, engine.to_native(getattr(data, name)))
    return engine, data


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
    loss, _ = engine.train_batch(engine.to_native(np.zeros((4, 1, 28, 28), np.float32)), np.arange(4))
    assert np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in engine.model.parameters())  # master weights stay fp32


def test_auto_precision_follows_the_hardware():
    import torch

    from cnnlab.training.torch_engine import native_bf16, pick_precision

    cpu = torch.device("cpu")
    assert pick_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "32")
    assert pick_precision("16-mixed", cpu) == "16-mixed"
