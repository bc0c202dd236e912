"""The numpy backend's augmentation against the torch backend's, given the same draws."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.scratch import augment
from cnnlab.training import augment as torch_augment


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 4),
    st.sampled_from(augment.PAD_MODES),
    st.booleans(),
    st.integers(0, 10),
    st.integers(1, 6),
    st.integers(0, 2**31 - 1),
)
def test_same_images_as_the_torch_backend_for_the_same_draws(max_shift, pad_mode, flip, size, n, seed):
    """torch draws offsets with randint (2, N), then flips with rand(N) < 0.5, then cutout centres
    with randint (2, N): a generator cloned before the call replays those draws, which ours are then
    given, so both backends' augmentation is compared exactly, reflect padding and cutout included."""
    x = np.random.default_rng(seed).standard_normal((n, 1, 9, 9)).astype(np.float32)
    options = SimpleNamespace(translate=max_shift, pad_mode=pad_mode, hflip=flip, cutout=size)
    fill = -1.0  # Fashion-MNIST's black, normalised
    expected = torch_augment.augment(torch.from_numpy(x), torch.Generator().manual_seed(seed), options, fill)
    replay = torch.Generator().manual_seed(seed)
    ours = x
    if max_shift > 0:
        offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=replay).numpy()
        ours = augment.translate(ours, offsets, max_shift, fill, pad_mode)
    if flip:
        ours = augment.hflip(ours, (torch.rand(n, generator=replay) < 0.5).numpy())
    if size > 0:
        ours = augment.cutout(ours, torch.randint(0, 9, (2, n), generator=replay).numpy(), size)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected.numpy())


@pytest.mark.parametrize("by", [1, 2, 3])
def test_reflect_padding_is_torchs_and_numpys(by):
    x = np.random.default_rng(by).standard_normal((2, 3, 5, 4))
    expected = torch_augment.pad(torch.from_numpy(x), by, "reflect").numpy()
    np.testing.assert_array_equal(augment.pad(x, by, "reflect"), expected)
    np.testing.assert_array_equal(
        augment.pad(x, by, "zero", fill=-1.0), torch_augment.pad(torch.from_numpy(x), by, fill=-1.0)
    )
    per_channel = (-1.0, 0.5, 2.0)  # a colour dataset's black differs by channel
    padded = augment.pad(x, by, "zero", fill=per_channel)
    np.testing.assert_array_equal(padded, torch_augment.pad(torch.from_numpy(x), by, fill=per_channel))
    assert [padded[0, c, 0, 0] for c in range(3)] == list(per_channel)
    np.testing.assert_array_equal(padded[..., by:-by, by:-by], x)
    with pytest.raises(ValueError, match="mode must be one of zero, reflect. Received: mode='edge'"):
        augment.pad(x, by, "edge")


def test_reflect_translation_mirrors_the_edge_without_repeating_it():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    # offset (0, 2) in an image padded by 1: one row down (row 1 mirrored in), one column left
    out = augment.translate(x, np.array([[0], [2]]), 1, mode="reflect")
    np.testing.assert_array_equal(out[0, 0], [[4, 5, 4], [1, 2, 1], [4, 5, 4]])


def test_cutout_blanks_a_square_clipped_at_the_border():
    x = np.ones((2, 1, 5, 5), np.float32)
    out = augment.cutout(x, np.array([[2, 0], [2, 4]]), 3)
    expected = np.ones((2, 5, 5), np.float32)
    expected[0, 1:4, 1:4] = 0  # centred (2, 2): rows and columns 1-3
    expected[1, 0:2, 3:5] = 0  # centre (0, 4): the square's top-left (-1, 3), clipped to 2 x 2
    np.testing.assert_array_equal(out[:, 0], expected)
    assert out.dtype == np.float32 and x.min() == 1  # a new array
    np.testing.assert_array_equal(
        augment.cutout(x, np.array([[2], [2]]), 2)[0, 0, 1:3, 1:3], 0
    )  # even: 1 before


@settings(max_examples=30, deadline=None)
@given(st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 2**31 - 1))
def test_shift_is_torchs_shift_images(dy, dx, seed):
    from cnnlab.models import shift_images

    x = np.random.default_rng(seed).standard_normal((2, 1, 6, 7))
    expected = shift_images(torch.from_numpy(x), dy, dx, fill=-1.0).numpy()
    np.testing.assert_array_equal(augment.shift(x, dy, dx, fill=-1.0), expected)


def test_translate_shifts_and_fills():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    # offset (0, 2) in an image padded by 1: one row down, one column left
    out = augment.translate(x, np.array([[0], [2]]), 1, fill=-1.0)
    np.testing.assert_array_equal(out[0, 0], [[-1, -1, -1], [1, 2, -1], [4, 5, -1]])
    np.testing.assert_array_equal(augment.translate(x, np.array([[1], [1]]), 1), x)  # centred: no shift
    np.testing.assert_array_equal(augment.hflip(x, [True])[0, 0], x[0, 0, :, ::-1])


def test_draws_are_reproducible_and_cover_the_range():
    x = np.random.default_rng(0).standard_normal((64, 1, 5, 5))
    a = augment.augment(x, np.random.default_rng(3), 2, True, 1.0, "reflect", 3)
    b = augment.augment(x, np.random.default_rng(3), 2, True, 1.0, "reflect", 3)
    np.testing.assert_array_equal(a, b)
    assert (a == 0).any() and not np.array_equal(a, x)
    shifts = augment.draw_shifts(10_000, 2, np.random.default_rng(0))
    assert set(np.unique(shifts)) == {0, 1, 2, 3, 4}
    centres = augment.draw_centres(10_000, 5, 3, np.random.default_rng(0))
    assert set(np.unique(centres[0])) == {0, 1, 2, 3, 4} and set(np.unique(centres[1])) == {0, 1, 2}
    assert abs(augment.draw_flips(10_000, np.random.default_rng(0)).mean() - 0.5) < 0.02


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_augmentation_returns_the_batch(dtype):
    x = np.ones((2, 1, 4, 4), dtype)
    assert augment.augment(x, np.random.default_rng(0)) is x
    assert augment.augment(x, np.random.default_rng(0), 1, True).dtype == dtype


def test_augment_draws_shifts_then_flips_then_centres():
    """The torch backend's order (cnnlab.training.augment.augment), from the one Generator."""
    x = np.random.default_rng(1).standard_normal((16, 1, 6, 6))
    got = augment.augment(x, np.random.default_rng(4), 2, True, -1.0, "reflect", 3)
    g = np.random.default_rng(4)
    expected = augment.translate(x, augment.draw_shifts(16, 2, g), 2, -1.0, "reflect")
    expected = augment.hflip(expected, augment.draw_flips(16, g))
    expected = augment.cutout(expected, augment.draw_centres(16, 6, 6, g), 3)
    np.testing.assert_array_equal(got, expected)
