import torch

from cnnlab.training.augment import augment, random_hflip, random_translate
from cnnlab.training.config import TrainConfig

BACKGROUND = -1.0  # Fashion-MNIST's black, normalised


def _images(n=8, h=6, w=6):
    return torch.arange(n * h * w, dtype=torch.float32).reshape(n, 1, h, w)


def test_translate_moves_each_image_by_its_own_shift_and_fills_background():
    x = _images()
    out = random_translate(x, 2, torch.Generator().manual_seed(0), fill=BACKGROUND)
    assert out.shape == x.shape
    for i in range(len(x)):
        # Find the shift that reproduces this image: the visible part must be an exact copy.
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.full_like(x[i], BACKGROUND)
                src = x[i][:, max(0, -dy) : 6 - max(0, dy), max(0, -dx) : 6 - max(0, dx)]
                shifted[:, max(0, dy) : 6 - max(0, -dy), max(0, dx) : 6 - max(0, -dx)] = src
                matches.append(torch.equal(shifted, out[i]))
        assert sum(matches) == 1, f"image {i} is not a pure shift of its original"


def test_translate_varies_across_the_batch_and_is_seeded():
    x = _images(32)
    a = random_translate(x, 3, torch.Generator().manual_seed(1), fill=BACKGROUND)
    b = random_translate(x, 3, torch.Generator().manual_seed(1), fill=BACKGROUND)
    c = random_translate(x, 3, torch.Generator().manual_seed(2), fill=BACKGROUND)
    assert torch.equal(a, b) and not torch.equal(a, c)
    background = (a == BACKGROUND).flatten(1).sum(1)
    assert len(set(background.tolist())) > 1  # different shifts, different amounts of padding


def test_translate_zero_is_identity_and_keeps_channels_last():
    x = _images()
    assert random_translate(x, 0, torch.Generator()) is x
    cl = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    out = random_translate(cl, 1, torch.Generator().manual_seed(0))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_hflip_flips_about_half_exactly():
    x = torch.randn(400, 1, 5, 5)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | kept).all())
    assert 150 < int(flipped.sum()) < 250


def test_augment_off_returns_the_input():
    x = _images()
    assert torch.equal(augment(x, torch.Generator(), TrainConfig(), BACKGROUND), x)
