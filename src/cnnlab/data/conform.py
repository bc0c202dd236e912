"""One size and one colour mode for every image of a dataset (``--image-size``, ``--color``).

The conversions are Pillow's, so an image folder read with Pillow and a dataset converted here in
bulk give the same pixels: gray from RGB by ITU-R 601-2 luma (``Image.convert("L")``), RGB from
gray by repeating the channel, and sizes by bilinear resampling (Keras' and torchvision's default),
which Pillow antialiases when it shrinks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cnnlab.data.dataset import Dataset
from cnnlab.errors import ConfigError

COLORS = ("gray", "rgb")
CHANNELS = {"gray": 1, "rgb": 3}
MIN_SIDE, MAX_SIDE = 4, 512  # below 4 pixels no 3x3 convolution fits; above 512 a CPU run is hopeless


def conformed(dataset: Dataset, image_size: int | None, color: str | None) -> Dataset:
    """``dataset`` as it is after conversion: the new input shape, and no published normalisation
    any more when anything changed (the statistics are then computed from the converted images)."""
    c, h, w = dataset.input_shape
    shape = (CHANNELS[color] if color else c, image_size or h, image_size or w)
    if shape == dataset.input_shape:
        return dataset
    return dataclasses.replace(dataset, input_shape=shape, mean=None, std=None)


def conform_images(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (N, C, H, W) converted to ``shape`` (C', H', W'): colour first, then size."""
    channels, height, width = shape
    if images.shape[1] != channels:
        images = to_gray(images) if channels == 1 else np.repeat(images, 3, axis=1)
    if images.shape[2:] != (height, width):
        images = np.stack([resize(image, (height, width)) for image in images])
    return np.ascontiguousarray(images)


def to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, 3, H, W) -> (N, 1, H, W), exactly as Pillow's ``convert("L")`` rounds."""
    r, g, b = (images[:, i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[:, None]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One uint8 image (C, H, W) resized to ``size`` (H', W') with Pillow's bilinear filter."""
    from PIL import Image

    height, width = size
    planes = [Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR) for plane in image]
    return np.stack([np.asarray(p, dtype=np.uint8) for p in planes])


def check_image_options(image_size: int | None, color: str | None) -> None:
    if image_size is not None and (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not MIN_SIDE <= image_size <= MAX_SIDE
    ):
        raise ConfigError(
            f"--image-size must be a whole number of pixels from {MIN_SIDE} to {MAX_SIDE}. "
            f"Received: {image_size!r}"
        )
    if color is not None and color not in COLORS:
        raise ConfigError(f"--color must be one of {', '.join(COLORS)}. Received: {color!r}")
