"""A dataset as a notebook shows it: its splits, its classes with their counts, and one image of
each class (as the model sees it, gray or colour). Pillow draws the strip: the data layer sits
below the figures."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

__all__ = ["dataset_html"]

SIDE = 84  # each image drawn about this many pixels wide, enlarged by a whole factor of its own width


def dataset_html(
    name: str, classes: Sequence[str], splits: dict[str, tuple[np.ndarray, np.ndarray]], where: str
) -> str:
    """``splits``: split name -> (uint8 images (N, C, H, W), labels (N,)); ``classes``: the class names."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(split)}</th><td>{len(images):,}</td>"
        f"<td>{html.escape(str(images.shape[1:]))} {images.dtype}</td></tr>"
        for split, (images, _) in splits.items()
    )
    images, labels = next(iter(splits.values()))
    counts = np.bincount(labels, minlength=len(classes))
    width = images.shape[-1] * _zoom(images)
    strip = _strip(images, labels, len(classes))
    cells = "".join(
        f"<td style='text-align:center;width:{width}px'>{k}: {html.escape(c)}<br>{counts[k]:,}</td>"
        for k, c in enumerate(classes)
    )
    return (
        f'<div class="cnnlab-dataset"><b>{html.escape(name)}</b>'
        f"<table><tr><th></th><th>images</th><th>each</th></tr>{rows}</table>"
        f"<img alt='one image of each class' src='data:image/png;base64,{strip}'>"
        f"<table><tr>{cells}</tr></table>"
        f'<div style="color:#555;font-size:90%">class: name, and its count in the first split; '
        f"read from {html.escape(where)}</div></div>"
    )


def _zoom(images: np.ndarray) -> int:
    return max(1, round(SIDE / images.shape[-1]))


def _strip(images: np.ndarray, labels: np.ndarray, count: int) -> str:
    """The first image of each of ``count`` classes side by side, enlarged, as base64 PNG."""
    from PIL import Image

    c, h, w = images.shape[1:]
    strip = np.zeros((h, w * count, c), np.uint8)  # (H, W, C), as Pillow takes it
    for k in range(count):
        found = np.flatnonzero(labels == k)
        if found.size:
            strip[:, k * w : (k + 1) * w] = images[found[0]].transpose(1, 2, 0)
    zoom = _zoom(images)
    picture = Image.fromarray(strip[..., 0] if c == 1 else strip)
    picture = picture.resize((strip.shape[1] * zoom, h * zoom), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
