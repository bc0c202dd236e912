"""--whiten: the first convolution starts at the whitening transform of the images' 3x3 patches."""

import numpy as np
import pytest
import torch

from cnnlab.data import normalize
from cnnlab.training.config import TrainConfig
from cnnlab.training.numpy_engine import NumpyEngine
from cnnlab.training.torch_engine import TorchEngine
from cnnlab.training.whitening import SAMPLE, whitened, whitening_filters


def _images(n=400, seed=0):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (n, 8, 8)).repeat(4, 1).repeat(4, 2)[:, :28, :28]  # correlated pixels
    return (smooth * 0.7 + rng.integers(0, 80, (n, 28, 28))).astype(np.uint8)


def test_the_filters_whiten_the_patches():
    """Convolving with the first 9 filters gives patch coordinates whose covariance is the identity
    (up to the eps that tempers the smallest directions)."""
    images = _images()
    filters = whitening_filters(images)
    assert filters.shape == (18, 1, 3, 3) and np.array_equal(filters[9:], -filters[:9])
    x = torch.from_numpy(normalize(images)).double()
    out = torch.nn.functional.conv2d(x, torch.from_numpy(filters[:9]).double())  # (N, 9, 26, 26)
    covariance = np.cov(out.permute(1, 0, 2, 3).reshape(9, -1).numpy())
    eigenvalues = np.linalg.eigvalsh(
        np.cov(
            np.lib.stride_tricks.sliding_window_view(
                normalize(images[:SAMPLE])[:, 0].astype(np.float64), (3, 3), axis=(1, 2)
            ).reshape(-1, 9),
            rowvar=False,
        )
    )
    expected = np.diag(np.sort(eigenvalues / (eigenvalues + 1e-2)))  # eigh's ascending order
    assert np.allclose(covariance, expected, atol=1e-6)


def test_whitened_keeps_the_other_filters_and_checks_the_shape():
    weight = np.random.default_rng(0).standard_normal((32, 1, 3, 3)).astype(np.float32)
    out = whitened(weight, _images())
    assert np.array_equal(out[18:], weight[18:]) and not np.allclose(out[:18], weight[:18])
    assert whitened(weight[:4], _images()).shape == (4, 1, 3, 3)  # as many as fit
    with pytest.raises(ValueError, match="--whiten needs"):
        whitened(np.zeros((8, 3, 3, 3), np.float32), _images())


@pytest.mark.parametrize("engine_class", [TorchEngine, NumpyEngine])
@pytest.mark.parametrize("model", ["convnet", "resnet-mini"])
def test_both_engines_start_their_first_conv_whitened_only_when_asked(engine_class, model):
    images = _images()
    expected = whitening_filters(images)
    for whiten in (True, False):
        config = TrainConfig(model=model, whiten=whiten, precision="32", backend=engine_class.backend)
        engine = engine_class(config, steps_per_epoch=1)
        engine.initialize(images)
        first = next(v for v in engine.weights().values() if v.ndim == 4)
        assert np.allclose(first[:18], expected, atol=1e-6) == whiten
