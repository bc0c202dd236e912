"""Grids of small pictures: the most confident mistakes, and the first layer's filters."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from cnnlab.data import CLASS_NAMES
from cnnlab.runs.layout import write_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (closed afterwards): one form for files and for the HTML report."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _pyplot().close(fig)
    return buffer.getvalue()


def write_png(path: Path, png: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(png))


def misclassified(ev, limit: int = 30) -> np.ndarray:
    """Indices of wrong predictions, most confident first: the mistakes worth looking at."""
    wrong = np.flatnonzero(ev.predictions != ev.labels)
    return wrong[np.argsort(-ev.confidence[wrong], kind="stable")][:limit]


def misclassified_png(ev, limit: int = 30, columns: int = 6) -> bytes:
    """The grid of the most confident mistakes (a 'no mistakes' note when there are none)."""
    plt = _pyplot()
    picks = misclassified(ev, limit)
    rows = max(1, math.ceil(len(picks) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.75 * columns, 2.05 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks):
        ax.imshow(ev.images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(
            f"true: {CLASS_NAMES[ev.labels[i]]}\npred: {CLASS_NAMES[ev.predictions[i]]}\n"
            f"confidence {ev.confidence[i]:.0%}",
            fontsize=8,
            color="firebrick",
        )
    if len(picks) == 0:
        axes.flat[0].text(0, 0.5, "no misclassified images", fontsize=11)
    wrong = int((ev.predictions != ev.labels).sum())
    fig.suptitle(
        f"Most confident mistakes on the {ev.split} split ({len(picks)} shown of {wrong} wrong "
        f"in {len(ev.labels)} images)",
        fontsize=10,
    )
    fig.tight_layout()
    return png_bytes(fig)


def first_conv_weights(model) -> np.ndarray | None:
    """The first Conv2d's weights (C_out, C_in, kH, kW), or None for a model without one."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.weight.detach().cpu().numpy()
    return None


def filters_png(weights: np.ndarray, columns: int = 8) -> bytes:
    """Each output channel's kernel, summed over input channels (one for grayscale), on one
    symmetric colour scale: red excites, blue inhibits, white ignores."""
    plt = _pyplot()
    kernels = weights.sum(axis=1)  # (C_out, kH, kW)
    limit = float(np.abs(kernels).max()) or 1.0
    rows = math.ceil(len(kernels) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.2 * columns + 1.2, 1.3 * rows + 0.6), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, kernel) in enumerate(zip(axes.flat, kernels)):
        image = ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"filter {k}", fontsize=8)
    out_ch, in_ch, kh, kw = weights.shape
    fig.suptitle(
        f"First-layer filters: {out_ch} kernels of {kh}x{kw} over {in_ch} input channel(s)", fontsize=10
    )
    fig.colorbar(image, ax=axes, shrink=0.7, label="weight")
    return png_bytes(fig)
