"""Data augmentation on whole batches of tensors: no per-sample Python in the hot loop.

Each function takes a batch (N, C, H, W) and a torch.Generator, so the augmentation of every
epoch is reproducible from (seed, epoch) and survives a resume.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BACKGROUND = -1.0  # a black pixel after the notebook's normalisation (x/255 - 0.5)/0.5


def random_translate(
    x: torch.Tensor, max_shift: int, generator: torch.Generator, fill: float = BACKGROUND
) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], filling with ``fill``.

    The same as padding by ``max_shift`` and taking a random crop of the original size.
    """
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=fill)  # (N, C, H + 2s, W + 2s)
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


def _layout(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        else torch.contiguous_format
    )


def augment(
    x: torch.Tensor, generator: torch.Generator, translate: int = 0, hflip: bool = False
) -> torch.Tensor:
    x = random_translate(x, translate, generator)
    return random_hflip(x, generator) if hflip else x
