"""Any photo -> the image a run's model takes: its size, its colour mode, its way of drawing.

``prepare`` follows the dataset. Fashion-MNIST, MNIST, KMNIST and the digits draw light items on
black, trimmed to the item, the longest edge resized to fit and centred (Xiao et al. 2017, section
2); a photo is prepared the same way: the background found from the image border is made black
(inverting dark-on-light photos), the image cropped to the item, resized to fit and centred, and
its contrast stretched to 0..255. Other datasets (CIFAR-10, folders of photos) are whole images: a
photo is resized whole to the dataset's size, as an image folder's images are read.
Files are decoded by ``cnnlab.data.decode``, the one decoding path, which bounds the size,
time and memory of each image.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cnnlab.data.decode import ImageSource

# A pixel belongs to the item when it is this much brighter than the background, as a share
# of the brightest pixel: low enough to keep faint fabric, high enough to drop JPEG noise.
ITEM_THRESHOLD = 0.1


@dataclasses.dataclass
class Prepared:
    image: np.ndarray  # uint8 (C, H, W) as the model takes it
    inverted: bool  # whether the photo was dark-on-light and got inverted


def read_image(path: ImageSource, color: str = "gray") -> np.ndarray:
    """The file (or bytes, a binary file, a PIL image) as float32 0..255: (H, W) for ``color``
    "gray", (H, W, 3) for "rgb"; transparent areas become white paper. Decoded within
    ``cnnlab.data.decode``'s budget, its longest side at most 1,024 pixels."""
    from cnnlab.data.decode import decode

    return decode(path, "RGB" if color == "rgb" else "L")


def luma(pixels: np.ndarray) -> np.ndarray:
    """float (H, W, 3) RGB -> float32 (H, W) gray by ITU-R 601-2, as Pillow's ``convert("L")``."""
    return (pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114).astype(np.float32)


def prepare(pixels: np.ndarray, dataset, invert: bool | None = None) -> Prepared:
    """A photo's pixels, float 0..255 as (H, W) gray or (H, W, 3) RGB, as ``dataset``'s model takes
    them: uint8 (C, H, W). ``invert`` None decides from the border (for light-on-black datasets)."""
    pixels = np.asarray(pixels, dtype=np.float32)
    channels, height, width = dataset.input_shape
    if channels == 1 and pixels.ndim == 3:
        pixels = luma(pixels)
    elif channels == 3 and pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    if dataset.item_on_black:
        return _centred_item(pixels, (height, width), invert)
    if invert:
        pixels = 255.0 - pixels
    resized = _resize(np.clip(pixels, 0, 255), (height, width))
    return Prepared(_chw(np.round(resized).astype(np.uint8)), bool(invert))


def _centred_item(pixels: np.ndarray, size: tuple[int, int], invert: bool | None) -> Prepared:
    gray = pixels if pixels.ndim == 2 else luma(pixels)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if invert is None:
        invert = background > 127.5
    if invert:
        pixels, background = 255.0 - pixels, 255.0 - background
    gray = pixels if pixels.ndim == 2 else luma(pixels)
    item = np.clip(gray - background, 0, None)  # background -> 0
    channels = 1 if pixels.ndim == 2 else 3
    if item.max() <= 0:  # a blank image: nothing to centre
        return Prepared(np.zeros((channels, *size), np.uint8), invert)
    rows, cols = np.nonzero(item > ITEM_THRESHOLD * item.max())
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))  # crop to the item
    cropped = np.clip(pixels - background, 0, None)[box]
    return Prepared(_chw(_fit_centred(cropped, size)), invert)


# The largest item padded to a square at full resolution: a larger one is first box-reduced (a
# 30,000 x 3 stripe would otherwise make a 30,000-pixel square canvas, 3.6 GB of float32).
MAX_ITEM_SIDE = 2048


def _fit_centred(item: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The item (h, w[, 3]) padded with black to a centred square, resized to ``size`` (Lanczos) and
    stretched to 0..255, as Fashion-MNIST was made."""
    from PIL import Image

    h, w = item.shape[:2]
    factor = -(-max(h, w) // MAX_ITEM_SIDE)  # ceil: 1 for any ordinary photo
    if factor > 1:
        planes = item[..., None] if item.ndim == 2 else item
        reduced = [
            np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c]), mode="F").reduce(factor))
            for c in range(planes.shape[2])
        ]
        item = np.stack(reduced, axis=2)[..., 0] if item.ndim == 2 else np.stack(reduced, axis=2)
        h, w = item.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, *item.shape[2:]), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = item
    resized = np.clip(_resize(square, size, lanczos=True), 0, None)  # Lanczos rings below zero at edges
    return np.round(255 * resized / max(float(resized.max()), 1e-6)).astype(np.uint8)


def _resize(pixels: np.ndarray, size: tuple[int, int], lanczos: bool = False) -> np.ndarray:
    """float (h, w) or (h, w, C) resized to ``size`` (H, W), each channel with Pillow's filter."""
    from PIL import Image

    height, width = size
    method = Image.Resampling.LANCZOS if lanczos else Image.Resampling.BILINEAR
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    out = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(planes[..., c]), mode="F").resize((width, height), method)
        )
        for c in range(planes.shape[2])
    ]
    stacked = np.stack(out, axis=2)
    return stacked[..., 0] if pixels.ndim == 2 else stacked


def _chw(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (C, H, W)."""
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
