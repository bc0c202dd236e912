"""The explorer's images: a test image, an uploaded photo, or the 28x28 the page sends.

Uploads go through ``cnnlab predict``'s own preprocessing (``read_gray`` then
``to_fashion_mnist``), after checks a server needs and a command line does not: a size limit, and
a pixel limit read from the header before anything is decoded (a small file that decodes to a
huge image is a decompression bomb).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
from pathlib import Path

import numpy as np

from cnnlab.data.images import Prepared, read_gray, to_fashion_mnist
from cnnlab.errors import CnnlabError, ImageError

__all__ = ["MAX_UPLOAD_BYTES", "MAX_PIXELS", "prepare_upload", "decode_image", "encode_image", "TestImages"]

SIDE = 28
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# A 25-megapixel photo is fine; more, from a file of at most 5 MB, is refused before decoding.
MAX_PIXELS = 25_000_000


class _Upload(io.BytesIO):
    """An uploaded file as ``read_gray`` reads it; its errors name it "the upload", not a path."""

    def __str__(self) -> str:
        return "the upload"


def prepare_upload(data: bytes, invert: bool | None = None) -> Prepared:
    """PNG or JPEG bytes -> the 28x28 image ``cnnlab predict`` would classify; ImageError if not."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError("the upload is empty; send a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            kind, (width, height) = probe.format, probe.size
    except UnidentifiedImageError:
        raise ImageError("the upload is not an image cnnlab can read; send a PNG or JPEG") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"the upload decodes to over {Image.MAX_IMAGE_PIXELS * 2:,} pixels; "
            "refused (a decompression bomb?)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"the upload is a damaged or unsupported image ({exc})") from None
    if kind not in ("PNG", "JPEG"):
        raise ImageError(f"the upload is a {kind} image; send a PNG or JPEG")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"the upload is {width}x{height} pixels, more than {MAX_PIXELS // 1_000_000} megapixels; "
            "refused (a decompression bomb?)"
        )
    return to_fashion_mnist(read_gray(_Upload(data)), invert)


def decode_image(text) -> np.ndarray:
    """The page's image, base64 of 784 bytes (28 rows of 28, 0 black .. 255 white) -> uint8 (28, 28)."""
    if not isinstance(text, str):
        raise ValueError(
            f"image must be a base64 string of {SIDE * SIDE} bytes. Received: {type(text).__name__}"
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image is not valid base64") from None
    if len(raw) != SIDE * SIDE:
        raise ValueError(
            f"image must hold {SIDE * SIDE} bytes ({SIDE}x{SIDE} pixels). Received: {len(raw)} bytes"
        )
    return np.frombuffer(raw, np.uint8).reshape(SIDE, SIDE)


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
        flat = images[:, 0] if images.shape[1] == 1 else images  # the page draws gray as (H, W)
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
