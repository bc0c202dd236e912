"""The explorer's images: a test image, an uploaded photo, or the image the page sends.

An image travels as base64 of its uint8 values, channel by channel, row by row: C x H x W bytes of
the run's input shape (784 for Fashion-MNIST's 28x28 gray, 3,072 for CIFAR-10's 32x32 colour). In
Python a gray image is (H, W) and a colour one (C, H, W).

Uploads go through ``cnnlab predict``'s own preprocessing: the one decoder (``cnnlab.data.decode``,
which checks the pixels a header declares before decoding any, so a small file that decodes to a
huge image costs nothing) and ``prepare``, for the run's dataset. The server adds a limit on the
upload's bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from pathlib import Path

import numpy as np

from cnnlab.data.decode import WEB_FORMATS, decode
from cnnlab.data.images import Prepared, prepare
from cnnlab.errors import CnnlabError

__all__ = ["MAX_UPLOAD_BYTES", "prepare_upload", "decode_image", "encode_image", "TestImages"]

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def prepare_upload(data: bytes, dataset, invert: bool | None = None) -> Prepared:
    """PNG or JPEG bytes -> the image ``cnnlab predict`` would classify for a run on ``dataset``
    ((H, W) gray or (C, H, W) colour); ImageError if not. Decoded by ``cnnlab.data.decode``, within
    its budget of time, memory and decodes at once."""
    mode = "RGB" if dataset.input_shape[0] == 3 else "L"
    prepared = prepare(decode(data, mode, formats=WEB_FORMATS, name="the upload"), dataset, invert)
    return Prepared(_as_page_draws(prepared.image), prepared.inverted)


def _as_page_draws(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) when gray: the page and the network take a gray image flat."""
    return image[0] if image.shape[0] == 1 else image


def decode_image(text, shape: tuple[int, int, int]) -> np.ndarray:
    """The page's image, base64 of C x H x W bytes (0 black .. 255 full) -> uint8 (H, W) for gray,
    (C, H, W) for colour; ``shape`` is the run's input shape (C, H, W)."""
    channels, height, width = shape
    size = channels * height * width
    described = f"{size} bytes ({width}x{height} pixels" + (
        ")" if channels == 1 else f" x {channels} channels)"
    )
    if not isinstance(text, str):
        raise ValueError(f"image must be a base64 string of {described}. Received: {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image is not valid base64") from None
    if len(raw) != size:
        raise ValueError(f"image must hold {described}. Received: {len(raw)} bytes")
    return _as_page_draws(np.frombuffer(raw, np.uint8).reshape(channels, height, width))


def encode_image(image: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).decode("ascii")


@dataclasses.dataclass(frozen=True)
class TestImages:
    images: np.ndarray  # uint8 (N, H, W) for gray, (N, C, H, W) for colour
    labels: np.ndarray  # int64 (N,)

    @classmethod
    def find(cls, loaded, data_dir: str | Path | None) -> tuple[TestImages | None, str]:
        """The run's test set where cnnlab finds it (never downloading), or (None, why not)."""
        try:
            images, labels = loaded.test_set(data_dir)
        except (CnnlabError, OSError) as exc:
            return None, str(exc)
        if images.shape[1:] != loaded.dataset.input_shape or not len(labels):
            return None, f"the test set holds images of shape {images.shape}"
        flat = images[:, 0] if images.shape[1] == 1 else images  # gray as (H, W), as the page draws it
        return cls(flat, labels.astype(np.int64)), f"{len(labels)} test images of {loaded.dataset.title}"

    def check(self, index: int) -> int:
        if not 0 <= index < len(self.labels):
            raise ValueError(f"index must be in 0..{len(self.labels) - 1}. Received: index={index}")
        return index

    def next_of_class(self, label: int, after: int) -> int:
        """The first test image of class ``label`` after index ``after``, wrapping around."""
        found = np.flatnonzero(self.labels == label)
        if not len(found):
            raise ValueError(f"the test set has no image of class {label}")
        later = found[found > after]
        return int(later[0] if len(later) else found[0])
