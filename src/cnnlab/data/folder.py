"""A folder of one's own images, one subfolder per class (torchvision's ImageFolder, Keras'
``image_dataset_from_directory``), and writing any dataset out as such a folder.

    FOLDER/cat/001.png  FOLDER/dog/xyz.jpg ...            one subfolder per class
    FOLDER/train/cat/... FOLDER/test/cat/...             or a training and a test part

The class names are the folder names, in sorted order, unless ``FOLDER/dataset.json`` (written by
``cnnlab data export``) gives their order, normalisation and whether mirror images keep their
class. Without ``train/`` and ``test/``, a seeded, stratified fifth of each class is the test set,
the same every run. Images are ordered by file name (then class) within each part, so a dataset
exported with numbered files reads back in its own order. Files that are not images (by suffix)
are skipped and counted; an image that cannot be read stops the load with its path.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import json
import os
from pathlib import Path

import numpy as np

from cnnlab.data import folder_cache
from cnnlab.data.conform import CHANNELS
from cnnlab.data.dataset import Dataset, LabelledImages
from cnnlab.data.decode import decode_uint8
from cnnlab.errors import DataError, ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
DESCRIPTION = "dataset.json"
TEST_SHARE = 0.2
SPLIT_SEED = 0  # the same test images every run, whatever --seed
# Part of the cache's key: raise it when a change to how a folder is decoded changes any pixel.
DECODER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Entry:
    path: Path
    label: int


@dataclasses.dataclass(frozen=True)
class Scan:
    """What a folder holds, from its listing and the images' headers (no pixels read)."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[Entry, ...]
    test: tuple[Entry, ...]
    split_made: bool  # no train/ and test/: the test part was drawn here
    sizes: collections.Counter  # (width, height) -> images
    has_color: bool
    skipped: tuple[Path, ...]  # files that are not images
    saved: dict  # FOLDER/dataset.json, or {}

    def notes(self) -> list[str]:
        said = [
            f"{self.root}: {len(self.train)} training and {len(self.test)} test images in "
            f"{len(self.classes)} classes"
        ]
        if self.split_made:
            said.append(
                f"{self.root} has no train/ and test/ folders: a stratified fifth of each class is the "
                "test set (seeded, the same every run)"
            )
        if self.skipped:
            names = ", ".join(p.name for p in self.skipped[:3]) + (", ..." if len(self.skipped) > 3 else "")
            said.append(f"skipped {len(self.skipped)} file(s) that are not images ({names})")
        return said


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(class_dir: Path) -> tuple[list[Path], list[Path]]:
    """(images, other files) of one class folder, sorted by name; subfolders are searched too."""
    images: list[Path] = []
    others: list[Path] = []
    for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            continue
        (images if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return images, others


def _ordered(entries: list[Entry]) -> tuple[Entry, ...]:
    """By file name, then class: numbered files read back in their own order."""
    return tuple(sorted(entries, key=lambda e: (e.path.name, e.label, str(e.path))))


def _saved_description(root: Path) -> dict:
    path = root / DESCRIPTION
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{path} is not a readable dataset description ({exc}); fix or remove it") from None
    if not isinstance(saved, dict):
        raise DataError(f"{path} must hold a JSON object; fix or remove it")
    return saved


def _class_order(root: Path, names: list[str], saved: dict) -> tuple[str, ...]:
    order = saved.get("classes")
    if order is None:
        return tuple(names)
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(names):
        raise DataError(
            f"{root / DESCRIPTION} lists classes {order} but the class folders are {names}; make them agree"
        )
    return tuple(str(n) for n in order)


def _entries(folder: Path, classes: tuple[str, ...], part: str, skipped: list[Path]) -> list[Entry]:
    entries: list[Entry] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue  # a test part may lack a class
        images, others = _files(class_dir)
        skipped.extend(others)
        if not images and part != "test":
            raise DataError(
                f"{class_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}); add some, or remove the folder"
            )
        entries.extend(Entry(path, label) for path in images)
    return entries


def _stratified_split(entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    by_class: dict[int, list[Entry]] = collections.defaultdict(list)
    for entry in entries:
        by_class[entry.label].append(entry)
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for label in sorted(by_class):
        members = by_class[label]
        order = rng.permutation(len(members))
        n_test = min(int(round(TEST_SHARE * len(members))), len(members) - 1)  # one at least stays to learn
        test += [members[i] for i in order[:n_test]]
        train += [members[i] for i in order[n_test:]]
    return train, test


def _headers(paths: list[Path]) -> tuple[collections.Counter, bool]:
    """The images' sizes and whether any has colour, from their headers; the first unreadable
    image is named, with how many others failed."""
    from PIL import Image

    sizes: collections.Counter = collections.Counter()
    has_color = False
    failed: list[tuple[Path, Exception]] = []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes[image.size] += 1
                has_color = has_color or image.mode not in GRAY_MODES
        except Exception as exc:  # Pillow raises many kinds for a broken header
            failed.append((path, exc))
    if failed:
        first, error = failed[0]
        others = f"; {len(failed) - 1} other image(s) failed too" if len(failed) > 1 else ""
        raise ImageError(f"{first} cannot be read as an image ({error}){others}: fix or remove them")
    return sizes, has_color


def _kept_headers(root: Path, paths: list[Path]) -> tuple[collections.Counter, bool]:
    """``_headers(paths)``, from the folder cache while every image is as it was when last read."""
    return folder_cache.cached_record(
        f"{root} headers",
        paths,
        lambda: _headers_as_json(paths),
        version=f"headers Pillow {_pillow_version()}",
        parse=functools.partial(_headers_from_json, len(paths)),
    )


def _headers_as_json(paths: list[Path]) -> dict:
    sizes, has_color = _headers(paths)
    return {"sizes": [[w, h, n] for (w, h), n in sizes.items()], "has_color": has_color}


def _headers_from_json(count: int, value) -> tuple[collections.Counter, bool]:
    """What ``_headers`` gave, sizes in the same order (the order ``most_common`` breaks ties in)."""
    sizes: collections.Counter = collections.Counter()
    try:
        for w, h, n in value["sizes"]:
            if not all(type(x) is int and x > 0 for x in (w, h, n)) or (w, h) in sizes:
                raise ValueError
            sizes[(w, h)] = n
        has_color = value["has_color"]
    except (KeyError, TypeError, ValueError):
        raise ValueError("it does not hold a list of image sizes") from None
    if sum(sizes.values()) != count or type(has_color) is not bool:
        raise ValueError(f"it does not hold the sizes of {count} images and whether any has colour")
    return sizes, has_color


def _saved_statistics(
    saved: dict, channels: int
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The mean and std that ``dataset.json`` gives, when it gives one of each per channel; else
    (None, None): they are computed from the training images once those are read."""
    mean, std = saved.get("mean"), saved.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == channels):
        return None, None
    return tuple(mean), tuple(std)


def _signature(root: Path) -> tuple:
    """What changes when images are added, removed or renamed: the folders' mtimes."""
    dirs = [root, *(d for d in root.rglob("*") if d.is_dir())]
    return tuple((str(d), d.stat().st_mtime_ns) for d in dirs)


def scan(root: Path) -> Scan:
    """The folder's classes, parts and image headers (cached while its folders are unchanged)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--dataset {root}: no such folder (nor a built-in dataset: `cnnlab data list`)")
    try:
        return _scan(root.resolve(), _signature(root))
    except PermissionError as exc:
        raise DataError(f"cannot read {exc.filename}: permission denied") from None


@functools.lru_cache(maxsize=4)
def _scan(root: Path, signature: tuple) -> Scan:
    saved = _saved_description(root)
    split = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split else root
    names = [d.name for d in _class_dirs(train_root)]
    if len(names) < 2:
        hint = " (a train/ folder needs a test/ folder beside it)" if (root / "train").is_dir() else ""
        raise DataError(
            f"{train_root} holds {len(names)} class folder(s){': ' + names[0] if names else ''}; a dataset "
            f"needs at least two, one subfolder of images per class{hint}"
        )
    classes = _class_order(root, names, saved)
    skipped: list[Path] = []
    train = _entries(train_root, classes, "train", skipped)
    if split:
        unknown = sorted({d.name for d in _class_dirs(root / "test")} - set(classes))
        if unknown:
            raise DataError(f"{root / 'test'} has class folder(s) {', '.join(unknown)} that train/ lacks")
        test = _entries(root / "test", classes, "test", skipped)
    else:
        train, test = _stratified_split(train)
    sizes, has_color = _kept_headers(root, [e.path for e in (*train, *test)])
    return Scan(
        root, classes, _ordered(train), _ordered(test), not split, sizes, has_color, tuple(skipped), saved
    )


@dataclasses.dataclass(frozen=True)
class FolderSource:
    """A folder of images as a dataset, read at one size (``image_size``) in one colour mode."""

    root: Path
    image_size: int | None = None
    color: str | None = None

    @property
    def name(self) -> str:
        return str(Path(self.root).resolve())

    @functools.cached_property
    def scan(self) -> Scan:
        return scan(self.root)

    def _shape(self) -> tuple[int, int, int]:
        scan = self.scan
        color = self.color or ("rgb" if scan.has_color else "gray")
        if self.image_size is not None:
            return CHANNELS[color], self.image_size, self.image_size
        if len(scan.sizes) > 1:
            found = ", ".join(f"{w}x{h}: {n}" for (w, h), n in scan.sizes.most_common(4))
            more = ", ..." if len(scan.sizes) > 4 else ""
            raise DataError(
                f"the images in {scan.root} have {len(scan.sizes)} sizes ({found}{more}); pass "
                "--image-size N to resize them all to N x N"
            )
        (width, height), _ = scan.sizes.most_common(1)[0]
        return CHANNELS[color], height, width

    def describe(self) -> Dataset:
        scan, shape = self.scan, self._shape()
        saved = scan.saved
        native = self.image_size is None and self.color is None
        mean, std = _saved_statistics(saved, shape[0]) if native else (None, None)
        return Dataset(
            self.name,
            scan.classes,
            shape,
            len(scan.train),
            len(scan.test),
            mean=mean,
            std=std,
            flips=bool(saved.get("flips", True)),
            item_on_black=bool(saved.get("item_on_black", False)),
            description=str(saved.get("description", f"the images in {scan.root}")),
            origin=str(scan.root),
        )

    def notes(self) -> list[str]:
        return self.scan.notes()

    def locate(self, data_dir=None) -> tuple[Path | None, str]:
        return Path(self.root), "the folder given by --dataset"

    def ensure(self, data_dir=None, quiet: bool = False) -> Path:
        return Path(self.root)

    def verify(self, directory=None) -> list[tuple[str, bool, str]]:
        dataset = self.describe()
        return [
            (str(self.scan.root), True, f"{dataset.train_total + dataset.test_total} readable image headers")
        ]

    def read(self, directory=None) -> LabelledImages:
        channels, height, width = self._shape()
        mode = "RGB" if channels == 3 else "L"
        scan = self.scan
        paths = [e.path for e in (*scan.train, *scan.test)]
        pixels = folder_cache.cached(
            f"{scan.root} {width}x{height} {mode}",
            paths,
            (channels, height, width),
            lambda: _decode_all(paths, mode, (width, height)),
            version=f"{DECODER_VERSION} Pillow {_pillow_version()}",
        )
        split = len(scan.train)
        return LabelledImages(
            pixels[:split],
            np.array([e.label for e in scan.train], np.int64),
            pixels[split:],
            np.array([e.label for e in scan.test], np.int64),
            classes=scan.classes,
        )


def _pillow_version() -> str:
    import PIL

    return PIL.__version__


def _decode_all(paths: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    """The images as uint8 (N, C, H, W); every one that fails is counted, the first (by path) named."""
    width, height = size
    channels = 3 if mode == "RGB" else 1
    out = np.empty((len(paths), channels, height, width), np.uint8)
    failed: list[tuple[Path, Exception]] = []

    def decode_one(i: int) -> None:
        try:
            out[i] = _decode(paths[i], mode, size)
        except Exception as exc:  # a truncated or damaged file raises anything from OSError up
            failed.append((paths[i], exc))

    # decode.py lets two decodes run at once; more threads overlap their resizes and file reads
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(decode_one, range(len(paths))))
    if failed:
        path, exc = min(failed, key=lambda f: str(f[0]))
        others = f"; {len(failed) - 1} other image(s) failed too" if len(failed) > 1 else ""
        raise ImageError(f"{path} cannot be read ({exc}){others}: fix or remove them")
    return out


def _decode(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 (C, H, W) in ``mode`` ("L" or "RGB") at ``size`` (width, height), within
    ``cnnlab.data.decode``'s budget; resized from its full resolution (after a JPEG's draft), as
    Pillow alone would, never box-averaged to ``MAX_SIDE`` first."""
    from PIL import Image

    pixels = decode_uint8(path, mode, name="it", size=size)  # (H, W) or (H, W, 3)
    if pixels.shape[1::-1] != size:
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


# Writing a dataset out as a folder


def safe_folder_name(name: str) -> str:
    """A class name as a folder name: path separators and leading dots replaced ("T-shirt/top" ->
    "T-shirt-top")."""
    cleaned = name.replace("/", "-").replace("\\", "-").replace("\0", "-").strip()
    return cleaned.lstrip(".") or "class"


def export(dataset: Dataset, images: LabelledImages, target: Path, log=print) -> Path:
    """Write ``images`` as ``target/{train,test}/<class>/<index>.png`` with ``target/dataset.json``
    (class order, normalisation, flips), so the folder reads back as the same dataset."""
    from PIL import Image

    from cnnlab.fileio import write_text

    folders = [safe_folder_name(c) for c in dataset.classes]
    if len(set(folders)) != len(folders):
        raise DataError(f"the class names {dataset.classes} do not make distinct folder names")
    _require_empty(target)
    width = len(str(max(dataset.train_total, dataset.test_total)))
    for part in ("train", "test"):
        pixels, labels = getattr(images, f"{part}_images"), getattr(images, f"{part}_labels")
        for folder in folders:
            (target / part / folder).mkdir(parents=True, exist_ok=True)
        for index, (image, label) in enumerate(zip(pixels, labels)):
            array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # (H, W[, C])
            Image.fromarray(array).save(target / part / folders[label] / f"{index:0{width}d}.png")
        log(f"wrote {len(labels)} {part} images")
    description = {**dataset.to_json(), "classes": folders, "name": safe_folder_name(dataset.title)}
    write_text(target / DESCRIPTION, json.dumps(description, indent=2) + "\n")
    return target


def _require_empty(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target} already exists and is not empty; choose a new folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {target}: {exc.strerror}; choose a writable folder") from None
