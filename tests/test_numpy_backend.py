"""``cnnlab train --backend numpy``: the same pipeline over the from-scratch engine."""

import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import FASHION_MNIST
from cnnlab.models import MODELS
from cnnlab.training.config import PRESETS, resolve
from cnnlab.training.numpy_engine import NumpyEngine
from cnnlab.training.torch_engine import TorchEngine
from tests.conftest import requires_real_data

FASHION = FASHION_MNIST.dataset


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
            "model": "convnet",
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
        TorchEngine(config, 6, FASHION),
        NumpyEngine(config, 6, FASHION),
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
    pixels = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    from_torch = TorchEngine(config, 1, FASHION).to_native(pixels)
    from_numpy = NumpyEngine(config, 1, FASHION).to_native(pixels)
    assert from_torch.shape == (4, 1, 8, 8) and from_torch.dtype == torch.float32
    assert from_numpy.shape == (4, 1, 8, 8) and from_numpy.dtype == np.float32
    assert np.array_equal(from_torch.numpy(), from_numpy)
    assert from_numpy.min() == -1.0 and from_numpy.max() == 1.0
    labels = np.array([3, 1], dtype=np.int64)  # anything but uint8 images passes through unchanged
    assert np.array_equal(TorchEngine(config, 1, FASHION).to_native(labels).numpy(), labels)


def test_numpy_backend_run_directory(synthetic_dir, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--backend",
                "numpy",
                "--model",
                "convnet",
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


@pytest.mark.parametrize(
    "extra",
    [[], ["--model", "convnet-bn", "--translate", "2", "--hflip", "--dropout", "0.3", "--tta"]],
    ids=["convnet", "convnet-bn-augmented"],
)
def test_numpy_backend_resume_matches_uninterrupted(synthetic_dir, tmp_path, monkeypatch, extra):
    """Augmentation and dropout masks are drawn from (seed, epoch): a resumed run repeats them."""
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
        *extra,
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
        (["--compile"], "--compile is not supported by the numpy backend"),
        (["--precision", "bf16"], "--precision bf16 is not supported by the numpy backend"),
        (["--precision", "16-mixed", "--model", "vgg-mini"], "--precision 16-mixed is not supported"),
        (["--device", "cuda"], "the numpy backend runs on the CPU"),
    ],
)
def test_numpy_backend_refuses_what_it_cannot_do(tmp_path, capsys, args, message):
    assert main(["train", "--backend", "numpy", "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1  # one line


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_numpy_backend_accepts_every_model_and_preset(preset):
    for model in MODELS:
        config = resolve({"backend": "numpy", "preset": preset, "model": model, "precision": "32"})
        assert config.backend == "numpy"
    every = resolve(
        {
            "backend": "numpy",
            "preset": "best-cpu",
            "valid_size": 5000,  # the preset trains on every image; early stopping needs a split
            "dropout": 0.2,
            "grad_clip": 1.0,
            "patience": 3,
            "precision": "32",
        }
    )
    assert every.translate and every.hflip and every.tta


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
    torch_engine, numpy_engine = TorchEngine(config, 5, FASHION), NumpyEngine(config, 5, FASHION)
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


class RecordedDropout(torch.nn.Module):
    """torch dropout applying the mask that the numpy model's Dropout at the same index drew last."""

    def __init__(self, ours):
        super().__init__()
        self.ours = ours

    def forward(self, x):
        return x * torch.from_numpy(self.ours._cache) if self.training else x


@pytest.mark.parametrize(
    "model, width", [("convnet-bn", 1.0), ("vgg-mini", 1.0), ("resnet-mini", 0.5)], ids=str
)
def test_every_option_gives_torchs_losses_and_logits(model, width, monkeypatch):
    """Augmentation (reflect padding, flips, cutout), dropout, gradient clipping, EMA of weights and
    batch-norm buffers, TTA with shifted views, label smoothing and the one-cycle schedule, from the
    same weights and batches: the numpy engine's
    augmented batches and dropout masks are fed to the torch engine, and both agree to float32
    rounding (loss 1e-4 relative; EMA weights and logits within 2e-3 of their scale).

    SGD, not Adam: in float32 a 2x2 max-pool window can hold two values within rounding of each other
    (after batch norm's cancellation), and the two engines may pick different ones; Adam's first steps
    move every weight by about lr whatever its gradient, which turned one such pick into a 1e-3 loss
    difference by step 3 of vgg-mini (found and checked against a float64 torch model)."""
    from cnnlab import scratch
    from cnnlab.training import torch_engine as torch_engine_module

    config = resolve(
        {
            "model": model,
            "width": width,
            "optimizer": "sgd",
            "lr": 0.05,
            "precision": "32",
            "channels_last": False,
            "translate": 2,
            "pad_mode": "reflect",
            "hflip": True,
            "cutout": 6,
            "dropout": 0.3,
            "grad_clip": 0.5,
            "tta": True,
            "tta_shift": 1,
            "ema": 0.9,
            "label_smoothing": 0.1,
            "epochs": 1,
        }
    )
    torch_engine, numpy_engine = TorchEngine(config, 6, FASHION), NumpyEngine(config, 6, FASHION)
    numpy_engine.model.load_state_dict({k: v.numpy() for k, v in torch_engine.model.state_dict().items()})
    index = next(i for i, m in enumerate(numpy_engine.model) if isinstance(m, scratch.nn.Dropout))
    torch_engine.model[index] = RecordedDropout(numpy_engine.model[index])
    augmented = {}
    real_augment = scratch.augment.augment
    monkeypatch.setattr(
        scratch.augment, "augment", lambda *a, **k: augmented.setdefault("x", real_augment(*a, **k))
    )
    monkeypatch.setattr(torch_engine_module, "augment", lambda *a, **k: torch.from_numpy(augmented.pop("x")))
    rng = np.random.default_rng(0)
    for epoch in (1, 2):
        torch_engine.start_epoch(epoch), numpy_engine.start_epoch(epoch)
        for _ in range(3):
            x = rng.integers(0, 256, (16, 1, 28, 28), dtype=np.uint8)
            y = rng.integers(0, 10, 16)
            numpy_loss, _ = numpy_engine.train_batch(numpy_engine.to_native(x), y)
            torch_loss, _ = torch_engine.train_batch(torch_engine.to_native(x), torch_engine.to_native(y))
            assert numpy_loss == pytest.approx(float(torch_loss), rel=1e-4)
    averaged = torch_engine.ema.module.state_dict()
    for key, value in numpy_engine.ema.state_dict().items():
        scale = max(np.abs(value).max(), 1)
        np.testing.assert_allclose(value, averaged[key].numpy(), rtol=0, atol=2e-3 * scale, err_msg=key)
    x = rng.integers(0, 256, (20, 1, 28, 28), dtype=np.uint8)
    expected = torch_engine.logits(torch_engine.to_native(x))
    got = numpy_engine.logits(numpy_engine.to_native(x))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-3 * np.abs(expected).max())


def test_numpy_run_of_vgg_mini_with_every_option_loads_as_a_torch_model(synthetic_dir, tmp_path):
    """The checkpoint (batch-norm buffers included) loads with torch.load(weights_only=True), the run
    loader builds the torch model from it, and its test accuracy with TTA is the numpy run's."""
    from cnnlab.runs.loader import load_run

    out = tmp_path / "run"
    options = ["--translate", "1", "--hflip", "--dropout", "0.2", "--tta", "--grad-clip", "1.0"]
    size = ["--train-size", "200", "--valid-size", "50", "--batch-size", "50", "--epochs", "1"]
    common = ["train", "--backend", "numpy", "--model", "vgg-mini", "--data-dir", str(synthetic_dir)]
    assert main([*common, *size, *options, "--out", str(out), "--quiet"]) == 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["model"]["1.num_batches_tracked"].dtype == torch.int64
    assert int(checkpoint["model"]["1.num_batches_tracked"]) == 4
    run = load_run(out)
    assert list(run.model.state_dict()) == list(checkpoint["model"])
    assert main(["evaluate", str(out), "--data-dir", str(synthetic_dir)]) == 0
    evaluation = json.loads((out / "evaluation-test.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)


@pytest.mark.parametrize("tta, shift", [(True, 0), (False, 1), (True, 2)])
def test_tta_averages_the_views_of_the_torch_backend(tta, shift):
    """cnnlab.models.class_probabilities and the numpy engine's twin, on one resnet-mini (width 0.5)
    in float64 in both backends: the views' logits agree to 1e-10, and both turn them into
    probabilities in float32 (torch's ``.float().softmax(1)``), so the averages agree to float32's
    rounding of the softmax (1e-6 relative)."""
    from cnnlab.models import build_model, class_probabilities
    from cnnlab.training.numpy_engine import class_probabilities as numpy_class_probabilities

    torch.manual_seed(0)
    theirs = build_model("resnet-mini", (1, 28, 28), 10, "torch", width=0.5).double().eval()
    ours = build_model("resnet-mini", (1, 28, 28), 10, "numpy", width=0.5).to(np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((7, 1, 28, 28))
    with torch.no_grad():
        expected = class_probabilities(theirs, torch.from_numpy(x), -1.0, tta, shift).numpy()
    got = numpy_class_probabilities(ours, x, -1.0, tta, shift)
    assert got.dtype == np.float32 and got.shape == (7, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
    plain = numpy_class_probabilities(ours, x, -1.0)
    assert not np.allclose(got, plain, rtol=1e-3)  # the views change the average


def test_numpy_engine_augments_with_every_option_in_the_draw_order(monkeypatch):
    """Each training batch is shifted (reflect padding), flipped and cut out with draws from the
    epoch's Generator, NumPy's default_rng([seed, epoch, 0]), in that order."""
    from cnnlab import scratch
    from cnnlab.scratch import augment

    BACKGROUND = -1.0  # Fashion-MNIST's black, normalised
    options = {"translate": 2, "pad_mode": "reflect", "hflip": True, "cutout": 6}
    config = resolve({"model": "convnet", "precision": "32", "epochs": 1, "seed": 4, **options})
    engine = NumpyEngine(config, 1, FASHION)
    engine.start_epoch(3)
    seen = []

    def record(model, optimizer, x, y, *args, **kwargs):
        seen.append(x)
        return 0.0, np.zeros((len(y), 10), np.float32)

    monkeypatch.setattr(scratch, "train_step", record)
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    engine.train_batch(x, np.zeros(8, np.int64))
    g = np.random.default_rng([4, 3, 0])
    expected = augment.translate(x, augment.draw_shifts(8, 2, g), 2, BACKGROUND, "reflect")
    expected = augment.hflip(expected, augment.draw_flips(8, g))
    expected = augment.cutout(expected, augment.draw_centres(8, 28, 28, g), 6)
    np.testing.assert_array_equal(seen[0], expected)
