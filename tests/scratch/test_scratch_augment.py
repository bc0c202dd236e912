"""The numpy backend's augmentation against the torch backend's, given the same draws."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.scratch import augment
from cnnlab.training import augment as torch_augment


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4), st.booleans(), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_same_images_as_the_torch_backend_for_the_same_draws(max_shift, flip, n, seed):
    """torch draws offsets with randint (2, N), then flips with rand(N) < 0.5: a generator cloned
    before the call replays those draws, which ours are then given."""
    x = np.random.default_rng(seed).standard_normal((n, 1, 9, 7)).astype(np.float32)
    generator = torch.Generator().manual_seed(seed)
    expected = torch_augment.augment(torch.from_numpy(x), generator, max_shift, flip)
    replay = torch.Generator().manual_seed(seed)
    ours = x
    if max_shift > 0:
        offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=replay).numpy()
        ours = augment.translate(ours, offsets, max_shift, fill=torch_augment.BACKGROUND)
    if flip:
        ours = augment.hflip(ours, (torch.rand(n, generator=replay) < 0.5).numpy())
    np.testing.assert_array_equal(ours, expected.numpy())


def test_translate_shifts_and_fills():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    # offset (0, 2) in an image padded by 1: one row down, one column left
    out = augment.translate(x, np.array([[0], [2]]), 1, fill=-1.0)
    np.testing.assert_array_equal(out[0, 0], [[-1, -1, -1], [1, 2, -1], [4, 5, -1]])
    np.testing.assert_array_equal(augment.translate(x, np.array([[1], [1]]), 1), x)  # centred: no shift
    np.testing.assert_array_equal(augment.hflip(x, [True])[0, 0], x[0, 0, :, ::-1])


def test_draws_are_reproducible_and_cover_the_range():
    a = augment.augment(np.zeros((64, 1, 5, 5)), np.random.default_rng(3), 2, True, fill=1.0)
    b = augment.augment(np.zeros((64, 1, 5, 5)), np.random.default_rng(3), 2, True, fill=1.0)
    np.testing.assert_array_equal(a, b)
    shifts = augment.draw_shifts(10_000, 2, np.random.default_rng(0))
    assert set(np.unique(shifts)) == {0, 1, 2, 3, 4}
    assert abs(augment.draw_flips(10_000, np.random.default_rng(0)).mean() - 0.5) < 0.02


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_augmentation_returns_the_batch(dtype):
    x = np.ones((2, 1, 4, 4), dtype)
    assert augment.augment(x, np.random.default_rng(0)) is x
    assert augment.augment(x, np.random.default_rng(0), 1, True).dtype == dtype
