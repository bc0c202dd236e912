"""Any image file -> a float32 array of bounded size, within a time and memory budget.

The one decoding path of cnnlab: ``cnnlab predict``, ``Run.predict`` and the explorer's uploads
all come here, so an image reads the same everywhere. What it guarantees, whatever the file says
about itself:

- **Bounded output.** The longest side is at most ``MAX_SIDE``: a JPEG is decoded at 1/2, 1/4 or
  1/8 of its size by libjpeg itself (``Image.draft``), and anything still larger is box-averaged
  down (``Image.reduce``). A model input is 28 to a few hundred pixels, cropped from the item, so
  1,024 loses nothing it could use.
- **A budget per decode.** Before a pixel is decoded, the size in the header is checked against
  ``MAX_PIXELS`` (what must be held at full resolution after the draft) and, for progressive
  JPEGs, whose decoder keeps every coefficient of the undrafted image, ``MAX_PROGRESSIVE_PIXELS``.
  Both are tuned so that one decode stays under 0.25 s and 100 MB (``bench/decode_budget.py``).
- **At most two decodes at once** in a process, whatever its CPU count (``MAX_CONCURRENT``), so a
  burst of uploads costs at most twice one decode's memory.

Values are 0..255 as 8-bit images hold them: 16-bit and float images are scaled by the range
their values use, transparent areas become white paper, and the EXIF orientation is applied.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeGuard, Union

import numpy as np

from cnnlab.errors import ImageError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

# What ``decode`` reads: a path, the file's bytes, a binary file open for reading, or a PIL image.
ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], "PILImage"]

__all__ = [
    "decode",
    "decode_uint8",
    "MAX_SIDE",
    "MAX_PIXELS",
    "MAX_PROGRESSIVE_PIXELS",
    "MAX_CONCURRENT",
    "WEB_FORMATS",
]

MAX_SIDE = 1024
# Pixels held at full resolution (after a JPEG's draft), at up to 4 bytes each (RGBA, 32-bit gray).
MAX_PIXELS = 8_000_000
# A progressive JPEG keeps 2 bytes per coefficient of the whole undrafted image, 1.5 to 3 per pixel.
MAX_PROGRESSIVE_PIXELS = 16_000_000
MAX_CONCURRENT = 2
WEB_FORMATS = ("PNG", "JPEG", "MPO")  # MPO: a phone's JPEG with an MPF segment (its first frame is the photo)

_DECODES = threading.BoundedSemaphore(MAX_CONCURRENT)
# EXIF orientation -> the transposition that shows the image upright (as ImageOps.exif_transpose).
_ORIENTATIONS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE"}
_ORIENTATIONS |= {6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def decode(
    source: ImageSource,
    mode: str = "L",
    *,
    formats: tuple[str, ...] | None = None,
    name: str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """A path, bytes, binary file or PIL image -> float32 (H, W) for ``mode="L"`` or (H, W, 3) for
    ``"RGB"``, values 0..255, longest side at most ``MAX_SIDE``.

    ``formats`` limits the file formats (Pillow's names, e.g. ``WEB_FORMATS``); None takes any that
    Pillow reads. ``name`` is what error messages call the source (default: the path). ``size``
    (width, height) is for a caller that resizes every image to that size (an image folder): a JPEG
    is then decoded by libjpeg in ``mode`` at the smallest of its scales that still covers ``size``,
    and nothing is box-averaged down to ``MAX_SIDE``, so the caller's resize starts from the pixels
    Pillow alone would give (the pixel caps hold all the same). Raises ImageError, with one line
    that says what is wrong, for anything it cannot or will not decode.
    """
    return _decoded(source, mode, formats, name, size, _to_array)


def decode_uint8(
    source: ImageSource,
    mode: str = "L",
    *,
    formats: tuple[str, ...] | None = None,
    name: str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """``decode``, rounded to uint8 (H, W) or (H, W, 3): what an image folder keeps. An 8-bit image
    never passes through float32, so its pixels are Pillow's own."""
    return _decoded(source, mode, formats, name, size, _to_uint8)


def _decoded(
    source: ImageSource,
    mode: str,
    formats: tuple[str, ...] | None,
    name: str | None,
    size: tuple[int, int] | None,
    to_array: Callable[[PILImage, bool, str, str], np.ndarray],
) -> np.ndarray:
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB'. Received: mode={mode!r}")
    label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
    with _DECODES:
        if _is_pil(source):  # already in memory: bounded, never drafted or changed in place
            return to_array(*_bounded(source, mode, label, drafted=False), mode, label)
        with _open(source, label, formats) as opened:
            return to_array(*_bounded(opened, mode, label, drafted=True, size=size), mode, label)


def _is_pil(source: object) -> TypeGuard[PILImage]:
    from PIL import Image

    return isinstance(source, Image.Image)


def _open(source: Any, label: str, formats: tuple[str, ...] | None) -> PILImage:
    """The image, opened (its header read, nothing decoded), or ImageError."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(f"{label} is empty; give a PNG or JPEG file")
        source = io.BytesIO(source)
    elif isinstance(source, (str, Path)):
        _regular_file(Path(source), label)
    try:
        opened = Image.open(source)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label} is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label} is not an image cnnlab can read; give a PNG or JPEG") from None
    except Image.DecompressionBombError:  # over Pillow's own limit, checked at open
        assert Image.MAX_IMAGE_PIXELS is not None  # Pillow checks for bombs only while it is set
        raise ImageError(
            f"{label} declares over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels; refused "
            "(a decompression bomb?)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{label} is a damaged or unsupported image ({_line(exc)})") from None
    if formats is not None and opened.format not in formats:
        opened.close()
        raise ImageError(f"{label} is a {opened.format} image; give a PNG or JPEG")
    return opened


def _regular_file(path: Path, label: str) -> None:
    """Only a regular file is read: a FIFO or a device could block forever or never end."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{label} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise ImageError(f"{label} is a directory, not an image")
    if not stat.S_ISREG(mode):
        raise ImageError(f"{label} is not a regular file (a pipe or a device?); give a PNG or JPEG file")


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _bounded(
    image: PILImage, mode: str, label: str, drafted: bool, size: tuple[int, int] | None = None
) -> tuple[PILImage, bool]:
    """(the decoded image, upright, its longest side at most MAX_SIDE unless ``size`` is given;
    whether it was 16-bit); ImageError over the budget. ``drafted``: a file we opened, which a
    JPEG's draft may shrink; ``size``: what the caller resizes to (see ``decode``)."""
    from PIL import Image

    sixteen_bit = image.mode.startswith("I;16")
    width, height = image.size
    if drafted and image.format in ("JPEG", "MPO"):
        _check_pixels(width * height, MAX_PROGRESSIVE_PIXELS if _progressive(image) else None, label)
        longest = max(width, height)
        if size is not None:
            image.draft(mode, size)
        elif longest > MAX_SIDE:  # libjpeg scales by 1/2, 1/4 or 1/8 while decoding: the cheap way down
            image.draft(mode, (-(-width * MAX_SIDE // longest), -(-height * MAX_SIDE // longest)))
    _check_pixels(image.size[0] * image.size[1], MAX_PIXELS, label)
    try:
        image.load()
        orientation = _orientation(image)  # after load: a PNG may keep its EXIF after the pixels
        image = _reducible(image)
        factor = -(-max(image.size) // MAX_SIDE)
        if factor > 1 and size is None:
            image = image.reduce(factor)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{label} is a damaged or unsupported image ({_line(exc)})") from None
    if orientation in _ORIENTATIONS:
        image = image.transpose(getattr(Image.Transpose, _ORIENTATIONS[orientation]))
    return image, sixteen_bit


def _orientation(image: PILImage) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:  # a damaged EXIF block is not worth refusing the photo for
        return None


def _progressive(image: PILImage) -> bool:
    return bool(image.info.get("progressive") or image.info.get("progression"))


def _check_pixels(pixels: int, limit: int | None, label: str) -> None:
    if limit is not None and pixels > limit:
        raise ImageError(
            f"{label} would decode to {pixels / 1e6:.0f} megapixels, more than the {limit / 1e6:g} "
            "cnnlab reads; scale it down first (or is it a decompression bomb?)"
        )


def _reducible(image: PILImage) -> PILImage:
    """Modes ``Image.reduce`` cannot average, converted to ones it can, keeping transparency."""
    if image.mode == "1":
        return image.convert("L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode.startswith("I;16"):
        return image.convert("I")
    return image


def _to_array(image: PILImage, sixteen_bit: bool, mode: str, label: str) -> np.ndarray:
    """float32 (H, W) or (H, W, 3), 0..255, from a decoded image of bounded size."""
    if _wide(image):
        pixels = np.asarray(image)
        gray = _wide_to_gray(pixels.astype(np.uint16) if sixteen_bit else pixels, label)
        return gray if mode == "L" else np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(_on_paper(image).convert(mode), dtype=np.float32)


def _to_uint8(image: PILImage, sixteen_bit: bool, mode: str, label: str) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3): ``_to_array``'s values rounded, an 8-bit image's taken as they are."""
    if _wide(image):
        return np.round(_to_array(image, sixteen_bit, mode, label)).astype(np.uint8)
    return np.asarray(_on_paper(image).convert(mode))


def _wide(image: PILImage) -> bool:
    """16- and 32-bit integers, floats: Pillow's "L" would clip them."""
    return image.mode.startswith(("I", "F"))


def _on_paper(image: PILImage) -> PILImage:
    """A transparent image over white paper; any other as it is."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    ):
        paper = Image.new("RGBA", image.size, "white")
        return Image.alpha_composite(paper, image.convert("RGBA"))
    return image


def _wide_to_gray(pixels: np.ndarray, label: str) -> np.ndarray:
    """A 16-bit, 32-bit or float grayscale image -> 0..255 by the range its values use: 8-bit values
    as they are, 16-bit ones divided by 257 (65535 -> 255), floats in [0, 1] times 255."""
    values = pixels.astype(np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        raise ImageError(f"{label} holds no finite pixel values; give a PNG or JPEG")
    low, high = float(values.min()), float(values.max())
    if pixels.dtype.kind == "f" and low >= 0 and high <= 1:
        return (values * 255).astype(np.float32)
    if low >= 0 and high <= 255 and pixels.dtype.kind != "u" or pixels.dtype == np.uint8:
        return values.astype(np.float32)
    if low >= 0 and high <= 65535:
        return (values / 257).astype(np.float32)
    raise ImageError(
        f"{label} has pixel values from {low:g} to {high:g}, beyond 16 bits; save it as an 8- or 16-bit PNG"
    )
