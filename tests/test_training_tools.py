"""Early stopping, EMA, TTA and the other options, end to end on synthetic data."""

import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import FASHION_MNIST
from cnnlab.training.loop import evaluate

FASHION = FASHION_MNIST.dataset

SMALL = ["--model", "convnet", "--train-size", "400", "--valid-size", "100", "--batch-size", "50", "--quiet"]


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
    from cnnlab.data import load_dataset, split_arrays
    from cnnlab.training.config import config_of_run
    from cnnlab.training.torch_engine import TorchEngine

    config = config_of_run(run)
    engine = TorchEngine(config, 1, FASHION)
    _, images = load_dataset(config.dataset, data_dir)
    data = split_arrays(images, config.train_size, config.valid_size, config.seed)
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
    for flag, value in zip(extra, [*extra[1:], "--"]):
        if not flag.startswith("--"):
            continue
        key = flag[2:].replace("-", "_")
        if value.startswith("--"):  # a switch
            assert config[key.removeprefix("no_")] is not key.startswith("no_"), flag
        elif config[key] is None:
            assert value == "0", flag  # --ema 0 means no EMA
        else:
            assert str(config[key]) == value or float(config[key]) == float(value), flag
    # What each option does to training is checked on the engine below (the augmented batches,
    # the clipped step), where it shows; here the runs only have to finish and learn.
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
            ["--backend", "numpy", "--compile", "--epochs", "1"],
            "--compile is not supported by the numpy",
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

    engine = TorchEngine(resolve({"precision": precision, "device": "cpu"}), 1, FASHION)
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


def engine_and_its_inputs(**options):
    """A float32 CPU torch engine and the list of batches its model is given, recorded as seen."""
    from cnnlab.training.config import resolve
    from cnnlab.training.torch_engine import TorchEngine

    engine = TorchEngine(resolve({"precision": "32", "device": "cpu", **options}), 4, FASHION)
    seen = []
    engine.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    engine.start_epoch(1)
    return engine, seen


def some_images(n=32):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)


def test_the_engine_trains_on_the_images_as_given_without_augmentation():
    import numpy as np

    engine, seen = engine_and_its_inputs()
    x = engine.to_native(some_images())
    engine.train_batch(x, engine.to_native(np.arange(32) % 10))
    assert torch.equal(seen[0], x)


def test_translate_shifts_each_training_image_within_the_bound():
    import numpy as np
    import torch.nn.functional as F

    engine, seen = engine_and_its_inputs(translate=2)
    x = engine.to_native(some_images())
    engine.train_batch(x, engine.to_native(np.arange(32) % 10))
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)  # -1 is a black pixel once normalised
    shifts = []
    for image, shifted in zip(padded, seen[0]):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(image[:, dy : dy + 28, dx : dx + 28], shifted)
        ]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 10  # each image its own shift, not one for the batch


def test_hflip_mirrors_some_training_images_and_leaves_the_others():
    import numpy as np

    engine, seen = engine_and_its_inputs(hflip=True)
    x = engine.to_native(some_images())
    engine.train_batch(x, engine.to_native(np.arange(32) % 10))
    flipped = [torch.equal(s, i.flip(-1)) for i, s in zip(x, seen[0])]
    kept = [torch.equal(s, i) for i, s in zip(x, seen[0])]
    assert all(f != k for f, k in zip(flipped, kept))  # each image exactly one of the two
    assert 4 < sum(flipped) < 28


@pytest.mark.parametrize("precision", ["32", "16-mixed"])
def test_grad_clip_bounds_each_sgd_step_to_lr_times_the_clip(precision):
    """Plain SGD moves the weights by lr * gradient: clipped, the step's norm is exactly lr * clip
    (under 16-mixed only if the gradients are unscaled before they are clipped)."""
    import numpy as np

    options = {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0, "lr": 0.5, "schedule": "constant"}

    def step_norm(grad_clip):
        engine, _ = engine_and_its_inputs(**options, grad_clip=grad_clip, precision=precision)
        before = [p.detach().clone() for p in engine.model.parameters()]
        engine.train_batch(engine.to_native(some_images()), engine.to_native(np.arange(32) % 10))
        moved = [p.detach() - b for p, b in zip(engine.model.parameters(), before)]
        return torch.sqrt(sum((m.double() ** 2).sum() for m in moved)).item()

    assert step_norm(None) > 0.05  # unclipped, the step is far longer than the clipped one
    assert step_norm(1e-3) == pytest.approx(0.5 * 1e-3, rel=1e-3)
