"""Grids of small pictures: the most confident mistakes, and the first layer's filters."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from cnnlab.report.figures import new_figure, show_image

__all__ = ["misclassified", "misclassified_figure", "filters_figure"]


def misclassified(ev, limit: int = 30) -> np.ndarray:
    """Indices of wrong predictions, most confident first: the mistakes worth looking at."""
    wrong = np.flatnonzero(ev.predictions != ev.labels)
    return wrong[np.argsort(-ev.confidence[wrong], kind="stable")][:limit]


def misclassified_figure(ev, limit: int = 30, columns: int = 6) -> Figure:
    """The grid of the most confident mistakes (a 'no mistakes' note when there are none)."""
    picks = misclassified(ev, limit)
    rows = max(1, math.ceil(len(picks) / columns))
    fig = new_figure((1.75 * columns, 2.05 * rows + 0.5), layout="tight")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks):
        show_image(ax, ev.images[i])
        names = ev.class_names
        ax.set_title(
            f"true: {names[ev.labels[i]]}\npred: {names[ev.predictions[i]]}\n"
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
    return fig


def filters_figure(weights: np.ndarray, title: str = "", columns: int = 8) -> Figure:
    """The first layer's filters, one tile per output channel, for weights (C_out, C_in, kH, kW).

    NOTE: each tile is the kernel's mean over its C_in input channels (the kernel itself for
    grayscale input), as the TensorBoard image shows it; the mean keeps one colour scale whatever
    C_in is. The scale is symmetric around zero (red excites, blue inhibits, white ignores) and
    shared by all tiles, so weak filters look weak; kernels of up to 25 weights have them written
    in. ``title`` (e.g. the run and the layer) heads the figure. ``cnnlab report`` and
    ``cnnlab show filters`` both draw this figure.
    """
    kernels = weights.mean(axis=1)  # (C_out, kH, kW)
    limit = float(np.abs(kernels).max()) or 1.0
    cols = min(len(kernels), columns)
    rows = math.ceil(len(kernels) / cols)
    fig = new_figure((1.25 * cols + 1.2, 1.25 * rows + 1.0))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, kernel) in enumerate(zip(axes.flat, kernels)):
        image = ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"filter {k}", fontsize=8)
        if kernel.size <= 25:
            for (r, c), v in np.ndenumerate(kernel):
                color = "white" if abs(v) > 0.6 * limit else "black"
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6, color=color)
    fig.colorbar(image, ax=axes, shrink=0.6, label="weight (mean over input channels)")
    out_ch, in_ch, kh, kw = weights.shape
    fig.suptitle(
        f"{title + ': ' if title else ''}first-layer filters, {out_ch} kernels of {kh}x{kw}, "
        f"each the mean over its {in_ch} input channel{'s' if in_ch != 1 else ''}\n"
        "red: positive weight, blue: negative, white: zero; each kernel slides over the image",
        fontsize=10,
    )
    return fig
