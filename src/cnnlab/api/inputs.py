"""Any image a user holds, made into the input a run's model sees: ``Run.prepare`` and ``Run.predict``.

What counts as one image: a path of a photo (PNG, JPEG), a PIL image, or an array (a NumPy array,
a torch tensor, anything ``np.asarray`` reads) of shape (H, W), (C, H, W) or (H, W, C) with C in
1, 3 or 4 (gray, RGB, RGBA). An image that already has the model's form (its channels and size, as
the dataset draws it) is used as it is; anything else is a photo and goes through the same
preparation as ``cnnlab predict`` (``cnnlab.data.images.prepare``: the run's size and colour mode,
and for light-on-black datasets the item cropped and centred).

Batches (``split_batch``): a list or tuple of images, or an array of shape (N, H, W), (N, C, H, W)
or (N, H, W, C).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from cnnlab.errors import ConfigError

__all__ = ["PreparedInput", "prepare_image", "split_batch"]

CHANNELS = (1, 3, 4)  # gray, RGB, RGBA


@dataclasses.dataclass(frozen=True)
class PreparedInput:
    """One image as the model sees it, before normalisation; ``np.asarray(prepared)`` gives it."""

    image: np.ndarray  # uint8 (C, H, W): the run's input shape
    inverted: bool  # whether a dark-on-light photo was inverted to light-on-dark
    name: str  # the path, or "image N"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.image if dtype is None else self.image.astype(dtype)

    def plot(self):
        """The image as the model sees it, each pixel a square, with what was done to it."""
        from cnnlab.report.figures import new_figure

        fig = new_figure((3.2, 3.5))
        ax = fig.subplots()
        from cnnlab.report.figures import show_image

        show_image(ax, self.image)
        ax.set_xticks([])
        ax.set_yticks([])
        what = "inverted: a dark item\non a light background" if self.inverted else "as given"
        ax.set_title(f"{self.name}: what the model sees,\n{_size(self.image)}, {what}", fontsize=8)
        return fig

    def _repr_png_(self) -> bytes:
        from cnnlab.report.figures import png_bytes

        return png_bytes(self.plot())

    def __repr__(self) -> str:
        return f"PreparedInput({self.name!r}, {_size(self.image)} uint8, inverted={self.inverted})"


def _size(image: np.ndarray) -> str:
    c, h, w = image.shape
    return f"{h}x{w}" + ("" if c == 1 else f"x{c}")


def prepare_image(image: Any, dataset, invert: bool | None, name: str) -> PreparedInput:
    """``image`` (one of the forms in the module docstring) as input of ``dataset``'s shape (C, H, W)
    and colour mode. ``invert``: None decides from a photo's border (for light-on-black datasets);
    True or False forces it (for every form)."""
    from cnnlab.data.images import prepare, read_image

    if isinstance(invert, np.bool_):
        invert = bool(invert)
    if invert is not None and not isinstance(invert, bool):
        raise ConfigError(
            f"invert must be True, False or None (decide from the border). Received: {invert!r}"
        )
    shape = dataset.input_shape
    if isinstance(image, (str, os.PathLike)):
        prepared = prepare(read_image(image, dataset.color), dataset, invert)
        return PreparedInput(prepared.image, prepared.inverted, str(image))
    pixels = _pixels_of(image, name)  # (H, W) gray or (H, W, 3) colour, 0..255
    as_given = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W)
    if as_given.shape == shape:  # drawn as the dataset draws: used as it is
        pixels_u8 = np.round(as_given).astype(np.uint8)
        return PreparedInput(255 - pixels_u8 if invert else pixels_u8, bool(invert), name)
    prepared = prepare(pixels.astype(np.float32), dataset, invert)
    return PreparedInput(prepared.image, prepared.inverted, name)


def _pixels_of(image: Any, name: str) -> np.ndarray:
    """(H, W) gray or (H, W, 3) colour values 0..255 from a PIL image or an array of any of the
    accepted layouts; an alpha channel is composited on white paper, as a file's is."""
    if _is_pil(image):
        return _pil_pixels(image)
    array = _array(image, name)
    if array.ndim == 3:
        array = _channels_last(array, name)
        if array.shape[-1] == 4:  # RGBA: through Pillow, as a file would be read
            from PIL import Image

            return _pil_pixels(Image.fromarray(np.round(array).astype(np.uint8), "RGBA"))
        array = array[..., 0] if array.shape[-1] == 1 else array
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 1:
        raise ConfigError(
            f"{name} must be an image of shape (H, W), (C, H, W) or (H, W, C) with C in 1, 3, 4. "
            f"Received: shape {array.shape}"
        )
    return array


def _array(image: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(image)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{name} is not an image cnnlab can read ({type(exc).__name__})") from None
    if array.dtype.kind not in "uif":
        raise ConfigError(
            f"{name} must hold numbers (pixel values 0 to 255). Received: an array of {array.dtype}"
        )
    if array.dtype.kind != "u" and array.size:
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
            raise ConfigError(f"{name} must hold pixel values from 0 to 255, as uint8 images do")
        if array.dtype.kind == "f" and 0 < array.max() <= 1:
            raise ConfigError(
                f"{name} must hold pixel values from 0 to 255; these are all in 0..1 (as ToTensor "
                "gives them), so multiply them by 255"
            )
    elif array.size and array.max() > 255:
        raise ConfigError(f"{name} must hold pixel values from 0 to 255, as uint8 images do")
    return array.astype(np.float32) if array.dtype != np.uint8 else array


def _channels_last(array: np.ndarray, name: str) -> np.ndarray:
    """(C, H, W) or (H, W, C) -> (H, W, C); the channel axis is the one of size 1, 3 or 4."""
    if array.shape[-1] in CHANNELS:
        return array
    if array.shape[0] in CHANNELS:
        return np.moveaxis(array, 0, -1)  # (C, H, W) -> (H, W, C)
    raise ConfigError(
        f"{name} has shape {array.shape}: an image's channels (1 gray, 3 RGB, 4 RGBA) come first or last"
    )


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.")


def _pil_pixels(image: Any) -> np.ndarray:
    """A PIL image as gray or RGB values, by the same decoder as a file (every mode, transparency as
    white paper, the same size budget)."""
    from cnnlab.data.images import read_image

    gray = image.mode in ("1", "L", "LA", "I", "I;16", "F")
    return read_image(image, "gray" if gray else "rgb")


def split_batch(images: Any, shape: tuple[int, int, int]) -> list[tuple[Any, str]]:
    """(image, name) for each image of a batch, or of a single image given alone; an array of the
    model's input ``shape`` (C, H, W) is one image."""
    if isinstance(images, (str, os.PathLike)) or _is_pil(images):
        return [(images, str(images) if not _is_pil(images) else "image 0")]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ConfigError("images is empty; give at least one image")
        return [
            (image, str(image) if isinstance(image, (str, os.PathLike)) else f"image {i}")
            for i, image in enumerate(images)
        ]
    array = _array(images, "images")
    if array.ndim == 3 and array.shape == tuple(shape):
        return [(array, "image 0")]  # one (C, H, W) image of the model's own shape
    if array.ndim == 2 or array.ndim == 3 and array.shape[-1] in CHANNELS and array.shape[0] > max(CHANNELS):
        return [(array, "image 0")]  # one (H, W) image, or one (H, W, C) image
    if array.ndim in (3, 4):
        if len(array) == 0:
            raise ConfigError("images is empty; give at least one image")
        return [(a, f"image {i}") for i, a in enumerate(array)]
    raise ConfigError(
        "images must be one image or a batch: (N, H, W), (N, C, H, W), (N, H, W, C), a list of images "
        f"or paths of photos. Received: shape {array.shape}"
    )
