"""``cnnlab train --backend numpy``: the same pipeline over the from-scratch engine."""

import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.training.config import resolve
from cnnlab.training.numpy_engine import NumpyEngine
from cnnlab.training.torch_engine import TorchEngine
from tests.conftest import requires_real_data


@pytest.mark.parametrize(
    "optimizer, extra",
    [
        ("sgd", {"momentum": 0.9, "weight_decay": 1e-3}),
        ("adam", {"weight_decay": 1e-3}),
        ("adamw", {"weight_decay": 0.05}),
    ],
)
def test_same_losses_as_torch_from_the_same_weights_and_batches(optimizer, extra):
    """From the same initial weights and the same batches, both backends' losses agree to float32 rounding."""
    config = resolve(
        {
            "optimizer": optimizer,
            "lr": 0.01,
            "schedule": "onecycle",
            "epochs": 1,
            "precision": "32",
            "label_smoothing": 0.1,
            **extra,
        }
    )
    torch_engine, numpy_engine = (
        TorchEngine(config, steps_per_epoch=6),
        NumpyEngine(config, steps_per_epoch=6),
    )
    numpy_engine.model.load_state_dict({k: v.numpy() for k, v in torch_engine.model.state_dict().items()})
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = rng.standard_normal((32, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 32)
        torch_loss, _ = torch_engine.train_batch(torch_engine.to_native(x), torch_engine.to_native(y))
        torch_loss = float(torch_loss)
        numpy_loss, _ = numpy_engine.train_batch(x, y)
        assert numpy_loss == pytest.approx(torch_loss, rel=2e-5)
        assert numpy_engine.lr == pytest.approx(torch_engine.lr, rel=1e-12)
    for key, value in torch_engine.model.state_dict().items():
        # Adam divides by sqrt(v): where a gradient is ~0, float32 rounding can flip a step, so allow one lr.
        np.testing.assert_allclose(numpy_engine.model.state_dict()[key], value.numpy(), rtol=1e-3, atol=1e-3)


def test_both_engines_normalise_pixels_bit_identically():
    """Arrays hold uint8 pixels; each engine's to_native must turn every value into the same float32."""
    config = resolve({"precision": "32", "channels_last": False})
    pixels = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    from_torch = TorchEngine(config, steps_per_epoch=1).to_native(pixels)
    from_numpy = NumpyEngine(config, steps_per_epoch=1).to_native(pixels)
    assert from_torch.shape == (4, 1, 8, 8) and from_torch.dtype == torch.float32
    assert from_numpy.shape == (4, 1, 8, 8) and from_numpy.dtype == np.float32
    assert np.array_equal(from_torch.numpy(), from_numpy)
    assert from_numpy.min() == -1.0 and from_numpy.max() == 1.0
    labels = np.array([3, 1], dtype=np.int64)  # anything but uint8 images passes through unchanged
    assert np.array_equal(TorchEngine(config, steps_per_epoch=1).to_native(labels).numpy(), labels)


def test_numpy_backend_run_directory(synthetic_dir, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--backend",
                "numpy",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(out),
                "--train-size",
                "400",
                "--valid-size",
                "100",
                "--batch-size",
                "50",
                "--epochs",
                "2",
                "--lr",
                "0.01",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "numpy" and summary["test_accuracy"] > 0.5
    assert (out / "loss.png").is_file() and (out / "metrics.csv").read_text().count("\n") == 3
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert set(checkpoint["model"]) == {
        "0.weight",
        "0.bias",
        "3.weight",
        "3.bias",
        "7.weight",
        "7.bias",
        "9.weight",
        "9.bias",
    }


def test_numpy_backend_resume_matches_uninterrupted(synthetic_dir, tmp_path, monkeypatch):
    from cnnlab.training import loop

    common = [
        "train",
        "--backend",
        "numpy",
        "--data-dir",
        str(synthetic_dir),
        "--train-size",
        "200",
        "--valid-size",
        "50",
        "--batch-size",
        "50",
        "--lr",
        "0.01",
        "--epochs",
        "3",
        "--quiet",
    ]
    assert main([*common, "--out", str(tmp_path / "full")]) == 0
    original = loop.Progress.end_epoch

    def interrupt_after_first_epoch(self, row):
        original(self, row)
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop.Progress, "end_epoch", interrupt_after_first_epoch)
    assert main([*common, "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(loop.Progress, "end_epoch", original)
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    strip = lambda p: [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]
    assert strip(tmp_path / "cut" / "metrics.csv") == strip(tmp_path / "full" / "metrics.csv")
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    for key in full["model"]:
        assert torch.equal(full["model"][key], cut["model"][key])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "vgg-mini"], "has no numpy backend"),
        (["--tta"], "--tta is not supported by the numpy backend"),
        (["--translate", "2", "--hflip"], "--translate, --hflip are not supported"),
        (["--precision", "bf16"], "runs in float32"),
    ],
)
def test_numpy_backend_refuses_what_it_cannot_do(tmp_path, capsys, args, message):
    assert main(["train", "--backend", "numpy", "--out", str(tmp_path / "r"), *args]) == 2
    assert message in capsys.readouterr().err


@requires_real_data
@pytest.mark.slow
def test_numpy_backend_learns_real_fashion_mnist(tmp_path):
    """Issue 3: convnet, batch 64, 1 epoch on 10,000 real images -> validation accuracy above 80%."""
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--backend",
                "numpy",
                "--batch-size",
                "64",
                "--epochs",
                "1",
                "--train-size",
                "10000",
                "--valid-size",
                "1000",
                "--lr",
                "0.004",
                "--ema",
                "0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_valid_accuracy"] > 0.80


def test_numpy_ema_matches_torch_averaged_model():
    config = resolve({"optimizer": "sgd", "lr": 0.01, "precision": "32", "ema": 0.9, "epochs": 1})
    torch_engine, numpy_engine = TorchEngine(config, 5), NumpyEngine(config, 5)
    numpy_engine.model.load_state_dict({k: v.numpy() for k, v in torch_engine.model.state_dict().items()})
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        torch_engine.train_batch(torch_engine.to_native(x), torch_engine.to_native(y))
        numpy_engine.train_batch(x, y)
    averaged = torch_engine.ema.module.state_dict()
    for key, value in numpy_engine.ema.state_dict().items():
        np.testing.assert_allclose(value, averaged[key].numpy(), atol=1e-6)
    assert not np.allclose(
        numpy_engine.ema.state_dict()["0.weight"], numpy_engine.model.state_dict()["0.weight"]
    )
