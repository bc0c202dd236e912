"""Any photo -> a 28x28 image the way Fashion-MNIST draws it.

Fashion-MNIST items are light on a black background, trimmed to the item, with the longest
edge resized to 28 pixels and centred (Xiao et al. 2017, section 2). ``to_fashion_mnist`` does
the same to a photo: it finds the background from the image border, makes it black (inverting
dark-on-light photos), crops to the item, pads to a square, resizes to 28x28 and stretches the
contrast to the full 0..255 range. Files are decoded by ``cnnlab.data.decode``, the one decoding
path, which bounds the size, time and memory of each image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

SIZE = 28
# A pixel belongs to the item when it is this much brighter than the background, as a share
# of the brightest pixel: low enough to keep faint fabric, high enough to drop JPEG noise.
ITEM_THRESHOLD = 0.1


@dataclasses.dataclass
class Prepared:
    image: np.ndarray  # uint8 (28, 28), light item on black
    inverted: bool  # whether the photo was dark-on-light and got inverted


def read_gray(path: str | Path) -> np.ndarray:
    """The file as float32 grayscale (H, W) in 0..255, its longest side at most 1,024 pixels;
    transparent areas become white paper. Decoded within ``cnnlab.data.decode``'s budget."""
    from cnnlab.data.decode import decode

    return decode(path, "L")


def photos_to_images(photos, invert: bool | None = None) -> np.ndarray:
    """Paths (PNG, JPEG, ...) or PIL images -> uint8 (N, 28, 28), each prepared as ``cnnlab predict``
    prepares it: decoded by the one decoder, then ``to_fashion_mnist``."""
    from cnnlab.data.decode import decode

    return np.stack([to_fashion_mnist(decode(photo, "L"), invert).image for photo in photos])


def to_fashion_mnist(gray: np.ndarray, invert: bool | None = None) -> Prepared:
    """(H, W) grayscale 0..255 -> Prepared. ``invert`` None decides from the border: a light
    border means a dark item on light paper, which Fashion-MNIST draws the other way round."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if invert is None:
        invert = background > 127.5
    if invert:
        gray, background = 255.0 - gray, 255.0 - background
    item = np.clip(gray - background, 0, None)  # background -> 0
    if item.max() <= 0:
        return Prepared(np.zeros((SIZE, SIZE), np.uint8), invert)  # a blank image: nothing to centre
    rows, cols = np.nonzero(item > ITEM_THRESHOLD * item.max())
    item = item[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # crop to the item
    return Prepared(_square_resize(item), invert)


def _square_resize(item: np.ndarray) -> np.ndarray:
    """Pad (h, w) to a centred square of zeros, resize to 28x28, stretch to 0..255."""
    from PIL import Image

    h, w = item.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = item
    resized = np.asarray(Image.fromarray(square, mode="F").resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    resized = np.clip(resized, 0, None)  # Lanczos rings slightly below zero at hard edges
    return np.round(255 * resized / max(resized.max(), 1e-6)).astype(np.uint8)
