"""Any photo -> a 28x28 image the way Fashion-MNIST draws it.

Fashion-MNIST items are light on a black background, trimmed to the item, with the longest
edge resized to 28 pixels and centred (Xiao et al. 2017, section 2). ``to_fashion_mnist`` does
the same to a photo: it finds the background from the image border, makes it black (inverting
dark-on-light photos), crops to the item, pads to a square, resizes to 28x28 and stretches the
contrast to the full 0..255 range.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cnnlab.errors import ImageError

SIZE = 28
# A pixel belongs to the item when it is this much brighter than the background, as a share
# of the brightest pixel: low enough to keep faint fabric, high enough to drop JPEG noise.
ITEM_THRESHOLD = 0.1


@dataclasses.dataclass
class Prepared:
    image: np.ndarray  # uint8 (28, 28), light item on black
    inverted: bool  # whether the photo was dark-on-light and got inverted


def read_gray(path: str | Path) -> np.ndarray:
    """The file as float32 grayscale (H, W) in 0..255; transparent areas become white paper."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image cnnlab can read; give a PNG or JPEG") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path} is a damaged or unsupported image ({exc})") from None
    if image.mode.startswith(("I", "F")):  # 16- and 32-bit integers, floats: Pillow's "L" would clip them
        return _wide_to_gray(np.asarray(image), path)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32)


def _wide_to_gray(pixels: np.ndarray, path: str | Path) -> np.ndarray:
    """A 16-bit, 32-bit or float grayscale image -> 0..255 by the range its values use: 8-bit values
    as they are, 16-bit ones divided by 257 (65535 -> 255), floats in [0, 1] times 255."""
    values = pixels.astype(np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        raise ImageError(f"{path} holds no finite pixel values; give a PNG or JPEG")
    low, high = float(values.min()), float(values.max())
    if pixels.dtype.kind == "f" and low >= 0 and high <= 1:
        return (values * 255).astype(np.float32)
    if low >= 0 and high <= 255 and pixels.dtype.kind != "u" or pixels.dtype == np.uint8:
        return values.astype(np.float32)
    if low >= 0 and high <= 65535:
        return (values / 257).astype(np.float32)
    raise ImageError(
        f"{path} has pixel values from {low:g} to {high:g}, beyond 16 bits; save it as an 8- or 16-bit PNG"
    )


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
