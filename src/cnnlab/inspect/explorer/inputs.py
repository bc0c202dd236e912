"""The explorer's images: a test image, an uploaded photo, or the 28x28 the page sends.

Uploads go through ``cnnlab predict``'s own preprocessing: the one decoder (``cnnlab.data.decode``,
which checks the pixels a header declares before decoding any, so a small file that decodes to a
huge image costs nothing) and ``to_fashion_mnist``. The server adds a limit on the upload's bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from pathlib import Path

import numpy as np

from cnnlab.data.decode import WEB_FORMATS, decode
from cnnlab.data.images import Prepared, to_fashion_mnist
from cnnlab.errors import DataError

__all__ = ["MAX_UPLOAD_BYTES", "prepare_upload", "decode_image", "encode_image", "TestImages"]

SIDE = 28
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def prepare_upload(data: bytes, invert: bool | None = None) -> Prepared:
    """PNG or JPEG bytes -> the 28x28 image ``cnnlab predict`` would classify; ImageError if not.
    Decoded by ``cnnlab.data.decode``, within its budget of time, memory and decodes at once."""
    return to_fashion_mnist(decode(data, "L", formats=WEB_FORMATS, name="the upload"), invert)


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
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # int64 (N,)

    @classmethod
    def find(cls, data_dir: str | Path | None) -> tuple[TestImages | None, str]:
        """The test set where cnnlab finds it (never downloading), or (None, why not)."""
        from cnnlab.data import FILES, locate
        from cnnlab.data.verified import VerifiedFiles

        try:
            directory, reason = locate(data_dir)
        except DataError as exc:
            return None, str(exc)
        if directory is None:
            return None, f"Fashion-MNIST is {reason}"
        verified = VerifiedFiles()
        try:
            images = verified.read(directory / FILES["test_images"].name, FILES["test_images"])
            labels = verified.read(directory / FILES["test_labels"].name, FILES["test_labels"])
        except (DataError, OSError) as exc:
            return None, f"cannot read the test set in {directory} ({exc})"
        finally:
            verified.save()
        if images.shape[1:] != (SIDE, SIDE) or len(images) != len(labels) or not len(labels):
            return None, f"the test set in {directory} holds images of shape {images.shape}"
        return cls(images, labels.astype(np.int64)), f"{len(labels)} test images from {directory}"

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
