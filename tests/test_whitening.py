"""--whiten: the first convolution starts at the whitening transform of the images' patches, over
every channel of a colour image."""

import dataclasses

import numpy as np
import pytest
import torch

from cnnlab.data import FASHION_MNIST
from cnnlab.training.config import TrainConfig
from cnnlab.training.numpy_engine import NumpyEngine
from cnnlab.training.torch_engine import TorchEngine
from cnnlab.training.whitening import SAMPLE, whitened, whitening_filters

FASHION = FASHION_MNIST.dataset
COLOUR = dataclasses.replace(FASHION, input_shape=(3, 28, 28), mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))


def _images(n=400, seed=0, channels=1):
    """uint8 (N, C, 28, 28) with correlated neighbouring pixels (and channels)."""
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (n, 1, 8, 8)).repeat(4, 2).repeat(4, 3)[..., :28, :28]
    return (smooth * 0.7 + rng.integers(0, 80, (n, channels, 28, 28))).astype(np.uint8)


@pytest.mark.parametrize("dataset, channels", [(FASHION, 1), (COLOUR, 3)])
def test_the_filters_whiten_the_patches(dataset, channels):
    """Convolving with one filter per direction gives patch coordinates whose covariance is the
    identity (up to the eps that tempers the smallest directions), over all C x 3 x 3 values."""
    images = _images(channels=channels)
    x = dataset.normalize(images[:SAMPLE])
    filters = whitening_filters(x)
    d = 9 * channels
    assert filters.shape == (2 * d, channels, 3, 3) and np.array_equal(filters[d:], -filters[:d])
    out = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(filters[:d]).double())
    covariance = np.cov(out.permute(1, 0, 2, 3).reshape(d, -1).numpy())
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (3, 3), axis=(2, 3))
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, d)  # (patches, C 3 3), as the conv reads them
    eigenvalues = np.linalg.eigvalsh(np.cov(patches, rowvar=False))
    expected = np.diag(np.sort(eigenvalues / (eigenvalues + 1e-2)))  # eigh's ascending order
    assert np.allclose(covariance, expected, atol=1e-6)


def test_whitened_keeps_the_other_filters_and_checks_the_shape():
    weight = np.random.default_rng(0).standard_normal((32, 1, 3, 3)).astype(np.float32)
    out = whitened(weight, FASHION, _images())
    assert np.array_equal(out[18:], weight[18:]) and not np.allclose(out[:18], weight[:18])
    with pytest.raises(ValueError, match="--whiten needs"):
        whitened(np.zeros((8, 3, 3, 3), np.float32), FASHION, _images())


def test_when_not_every_direction_fits_the_largest_ones_are_kept_with_both_signs():
    """RGB 3x3 patches have 27 directions, 54 filters with their negatives: a first conv of 32 gets the
    16 of largest variance, each with both signs, and keeps its other filters."""
    images = _images(channels=3)
    weight = np.random.default_rng(1).standard_normal((32, 3, 3, 3)).astype(np.float32)
    out = whitened(weight, COLOUR, images)
    every = whitening_filters(COLOUR.normalize(images[:SAMPLE]))  # rising eigenvalue; negatives after
    np.testing.assert_array_equal(out[:16], every[27 - 16 : 27])
    np.testing.assert_array_equal(out[16:32], -every[27 - 16 : 27])
    small = whitened(weight[:4], COLOUR, images)  # as many as fit: the two largest directions
    np.testing.assert_array_equal(small, np.concatenate([every[25:27], -every[25:27]]))


@pytest.mark.parametrize("engine_class", [TorchEngine, NumpyEngine])
@pytest.mark.parametrize("model", ["convnet", "resnet-mini"])
def test_both_engines_start_their_first_conv_whitened_only_when_asked(engine_class, model):
    images = _images()
    expected = whitening_filters(FASHION.normalize(images[:SAMPLE]))
    for whiten in (True, False):
        config = TrainConfig(model=model, whiten=whiten, precision="32", backend=engine_class.backend)
        engine = engine_class(config, 1, FASHION)
        engine.initialize(FASHION, images)
        first = next(v for v in engine.weights().values() if v.ndim == 4)
        assert np.allclose(first[:18], expected, atol=1e-6) == whiten
