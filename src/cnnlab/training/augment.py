"""Data augmentation on whole batches of tensors: no per-sample Python in the hot loop.

Each function takes a batch (N, C, H, W) and a torch.Generator on the batch's device, so the
augmentation of every epoch is reproducible from (seed, epoch), survives a resume, and never
waits on the host. The draws are those of ``cnnlab.scratch.augment`` (the numpy backend's), in
the same order: shifts, then flips, then cutout squares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnlab.models import pad_constant

Fill = float | Sequence[float]  # one value, or one per channel (the dataset's black, normalised)


def pad(x: torch.Tensor, by: int, mode: str = "zero", fill: Fill = 0.0) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H + 2 by, W + 2 by): ``fill`` around (zero: the black background), or
    the image mirrored at its edge without repeating it (reflect, as numpy's and torch's)."""
    if mode == "reflect":
        return F.pad(x, (by,) * 4, mode="reflect")
    return pad_constant(x, by, fill)


def random_translate(
    x: torch.Tensor, max_shift: int, generator: torch.Generator, mode: str = "zero", fill: Fill = 0.0
) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift]; ``mode`` says what
    comes in at the border (``pad``).

    The same as padding by ``max_shift`` and taking a random crop of the original size.
    """
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = pad(x, max_shift, mode, fill)  # (N, C, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=generator.device)
    offsets = offsets.to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]  # (N, 1, 1)
    # Advanced indexing picks each image's crop: (N, H, W, C) -> back to (N, C, H, W).
    crops = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous(memory_format=_layout(x))


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = (torch.rand(len(x), generator=generator, device=generator.device) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator, fill: float = 0.0) -> torch.Tensor:
    """Set a ``size`` x ``size`` square of each image to ``fill`` (DeVries & Taylor 2017): its centre
    uniform over the image, the square clipped at the border, so it may fall partly outside.

    ``fill`` 0 is the dataset's mean grey after normalisation, as the paper fills with the mean.
    """
    if size <= 0:
        return x
    n, _, h, w = x.shape
    centres = torch.randint(0, h, (2, n), generator=generator, device=generator.device).to(x.device)
    top = centres[0] - size // 2  # (N,), may be negative: the square is clipped
    left = centres[1] - size // 2
    rows = torch.arange(h, device=x.device)[None, :]  # (1, H)
    cols = torch.arange(w, device=x.device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)  # (N, H)
    inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)  # (N, W)
    square = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]  # (N, 1, H, W)
    return x.masked_fill(square, fill)


def _layout(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        else torch.contiguous_format
    )


def augment(x: torch.Tensor, generator: torch.Generator, options, fill: Fill) -> torch.Tensor:
    """The training augmentation ``options`` ask for (a TrainConfig's translate, pad_mode, hflip
    and cutout), in the draw order of the numpy backend: shift, flip, cutout. ``fill`` is what a
    shift brings in at the border: the dataset's black, normalised (``Dataset.background``)."""
    x = random_translate(x, options.translate, generator, options.pad_mode, fill)
    x = random_hflip(x, generator) if options.hflip else x
    return random_cutout(x, options.cutout, generator)
