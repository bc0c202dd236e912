"""The one place cnnlab makes a figure, and the one place it turns one into a PNG.

Figures are matplotlib ``Figure`` objects made directly, never through ``pyplot``: no backend is
chosen, no global list of open figures grows, nothing needs closing, and importing cnnlab leaves a
notebook's backend (``%matplotlib inline``, a widget backend) as its user set it. Saving renders
with Agg whatever the backend is, so the PNGs are the same in a terminal, a notebook or CI.

A figure made without pyplot is one Jupyter's inline hook never sees, so it would print as
``<Figure size 1100x420 with 3 Axes>``; each of cnnlab's figures therefore shows itself, as a PNG
(IPython's ``_repr_png_``), with no pyplot import and whatever the backend.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from matplotlib.figure import Figure

from cnnlab.fileio import write_atomic

__all__ = ["DPI", "ShownFigure", "new_figure", "png_bytes", "save_png", "show_image"]

DPI = 110  # 1100 pixels for a 10-inch figure: the width of report.html's column


class ShownFigure(Figure):
    """A matplotlib ``Figure`` that a notebook shows as a PNG: the display protocol's ``_repr_png_``.

    Where the inline backend has registered its own PNG printer for ``Figure`` (after ``import
    matplotlib.pyplot``), IPython uses that one instead: either way the figure is shown once."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


def new_figure(
    figsize: tuple[float, float],
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained",
    **kwargs,
) -> ShownFigure:
    """A figure of its own, ``figsize`` (width, height) in inches. ``layout`` is matplotlib's layout
    engine: "constrained" (the default) keeps titles, labels and colour bars from overlapping;
    None for a figure placed by hand (``subplots_adjust``). Other keywords go to ``Figure``."""
    return ShownFigure(figsize=figsize, layout=layout, **kwargs)


def show_image(ax, image, **kwargs):
    """Draw one uint8 image on ``ax``: (C, H, W) or (H, W), gray in gray, RGB in colour, 0 black and
    255 white, its pixels square and unsmoothed. Returns matplotlib's image."""
    import numpy as np

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3:  # (3, H, W) -> (H, W, 3), as matplotlib draws colour
        return ax.imshow(image.transpose(1, 2, 0), interpolation="nearest", **kwargs)
    return ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest", **kwargs)


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes: one form for files and for the images inside report.html."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_png(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write the figure to ``path`` as a PNG, atomically (a reader never sees half a file)."""
    path = Path(path)
    png = png_bytes(fig, dpi)
    write_atomic(path, lambda fh: fh.write(png))
    return path
