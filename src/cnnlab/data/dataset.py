"""The dataset object: what a dataset is, apart from where its files live.

A ``Dataset`` carries everything the rest of cnnlab asks of the data: the class names, the input
shape (C, H, W), the per-channel normalisation, the sizes of its training pool and test set, and
whether a mirror image keeps its class. Models take their shape from it, engines normalise with
it, reports name classes with it, and a run saves it as ``dataset.json`` so that predicting,
exporting and exploring need no data at all. How the images are found and read is a ``Source``'s
job (``cnnlab.data.sources``); ``LabelledImages`` holds them in memory, uint8 (N, C, H, W).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from cnnlab.errors import DataError

PIXEL_MAX = 255.0


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset's description. ``mean`` and ``std`` are per channel, of ``pixel / 255``; ``None``
    until computed from the training images (``with_statistics``)."""

    name: str  # the registry name ("fashion-mnist"), or a folder's absolute path
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (C, H, W)
    train_total: int  # images in the training pool, which the seeded split divides into train and valid
    test_total: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # Whether a mirrored image keeps its class: clothes and photos do; digits and characters don't,
    # so --hflip and the mirror of --tta are refused for them.
    flips: bool = True
    # Whether the images are light items on black, trimmed and centred as MNIST's: a photo given to
    # predict is then prepared the same way (inverted when dark on light, cropped, centred); else it
    # is resized whole, as an image folder's images are.
    item_on_black: bool = False
    description: str = ""
    # Where the images came from (a directory, an archive, "scikit-learn"), for people, not for loading.
    origin: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))

    @property
    def num_classes(self) -> int:
        """How many classes: ``len(classes)``."""
        return len(self.classes)

    @property
    def channels(self) -> int:
        """The images' channels: 1 for gray, 3 for colour (``input_shape[0]``)."""
        return self.input_shape[0]

    @property
    def color(self) -> str:
        """``"rgb"`` for three channels, else ``"gray"``."""
        return "rgb" if self.channels == 3 else "gray"

    @property
    def title(self) -> str:
        """A short name for people: the registry name, or a folder's own name."""
        return self.name.rstrip("/").rsplit("/", 1)[-1] or self.name

    def with_statistics(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Dataset:
        """The same dataset with this per-channel normalisation, ``(x/255 - mean) / std``."""
        return dataclasses.replace(self, mean=tuple(mean), std=tuple(std))

    def statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel; DataError while they are not known (no images read yet)."""
        if self.mean is None or self.std is None:
            raise DataError(f"the normalisation of dataset {self.name} is not known yet (no images read)")
        return self.mean, self.std

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        shape = (1, self.channels, 1, 1)
        mean, std = self.statistics()
        return np.asarray(mean, np.float32).reshape(shape), np.asarray(std, np.float32).reshape(shape)

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) -> float32 (N, C, H, W): ``(x / 255 - mean) / std`` per channel.

        One table lookup per pixel instead of three passes over a large float array; the table is
        computed in float32 in that order, as the torch engine computes it, so both see the same bits.
        """
        mean, std = self._stats()
        levels = np.arange(256, dtype=np.float32)[None, :]  # (1, 256)
        tables = (levels / np.float32(PIXEL_MAX) - mean[0, :, 0]) / std[0, :, 0]  # (C, 256)
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise DataError(f"expected uint8 images (N, {self.channels}, H, W). Received: {images.shape}")
        if self.channels == 1:
            return tables[0][images]
        return np.stack([tables[c][images[:, c]] for c in range(self.channels)], axis=1)

    def background(self) -> tuple[float, ...]:
        """A black pixel after normalisation, per channel: what a shift brings in at the border."""
        mean, std = self._stats()
        return tuple(float(v) for v in (np.float32(0.0) - mean.ravel()) / std.ravel())

    def _repr_html_(self) -> str:
        import html

        stats = "computed from the training images when read"
        if self.mean is not None and self.std is not None:
            mean, std = (", ".join(f"{v:.4g}" for v in values) for values in (self.mean, self.std))
            stats = f"mean {mean}; std {std}"
        rows = [
            (
                "classes",
                f"{self.num_classes}: {', '.join(self.classes[:12])}"
                + (", ..." if self.num_classes > 12 else ""),
            ),
            ("images", f"{' x '.join(map(str, self.input_shape))} (C x H x W), {self.color}"),
            ("train / test", f"{self.train_total:,} / {self.test_total:,}"),
            ("normalisation", stats),
            ("mirror images", "keep their class" if self.flips else "change class"),
        ]
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        heading = f"<b>{html.escape(self.title)}</b> {html.escape(self.description)}"
        return f"<div>{heading}<table>{cells}</table></div>"

    def to_json(self) -> dict[str, Any]:
        """The record a run saves as ``dataset.json``; ``from_json`` reads it back."""
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_json(cls, values: Any, where: str = "dataset.json") -> Dataset:
        """The dataset a run saved; a damaged record is one line naming ``where``."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or not {"name", "classes", "input_shape"} <= set(values):
            raise DataError(f"{where} does not describe a dataset (name, classes, input_shape)")
        try:
            dataset = cls(**{k: v for k, v in values.items() if k in fields})
            _check_description(dataset)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where} does not describe a dataset ({exc})") from None
        return dataset


def _check_description(dataset: Dataset) -> None:
    c, h, w = dataset.input_shape
    if c not in (1, 3) or h < 1 or w < 1:
        raise ValueError(f"input_shape must be (1 or 3, H, W). Received: {dataset.input_shape}")
    if len(dataset.classes) < 2 or not all(isinstance(n, str) for n in dataset.classes):
        raise ValueError("classes must name at least two classes")
    for name in ("mean", "std"):
        value = getattr(dataset, name)
        if value is not None and len(value) != c:
            raise ValueError(f"{name} must have one value per channel ({c}). Received: {value}")
    if dataset.std is not None and min(dataset.std) <= 0:
        raise ValueError(f"std must be positive. Received: {dataset.std}")


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """A dataset in memory: uint8 images (N, C, H, W) and int64 labels (N,), its two parts."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...] | None = None  # the class names the files themselves give, if any
    name: str = ""  # the dataset's, when known (``cnnlab.load_data`` sets it)

    def _repr_html_(self) -> str:
        from cnnlab.data.display import dataset_html

        classes = self.classes or tuple(str(k) for k in range(int(self.train_labels.max(initial=0)) + 1))
        splits = {
            "train": (self.train_images, self.train_labels),
            "test": (self.test_images, self.test_labels),
        }
        return dataset_html(self.name or "dataset", classes, splits, self.name or "memory")

    def __repr__(self) -> str:
        return (
            f"LabelledImages({self.name or 'dataset'}: train_images {self.train_images.shape}, "
            f"test_images {self.test_images.shape}, {len(self.classes or ())} classes)"
        )

    def check(self, dataset: Dataset, where: str) -> None:
        """The arrays fit ``dataset``: shapes, dtypes, pairs and label range; ``where`` names the files."""
        for part in ("train", "test"):
            images, labels = getattr(self, f"{part}_images"), getattr(self, f"{part}_labels")
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != dataset.input_shape:
                raise DataError(
                    f"{where} holds {part} images {images.dtype} {images.shape}; expected uint8 "
                    f"(N, {', '.join(map(str, dataset.input_shape))})"
                )
            if labels.ndim != 1 or len(labels) != len(images):
                raise DataError(f"{where} has {len(images)} {part} images but {len(labels)} labels")
            if labels.size and (labels.min() < 0 or labels.max() >= dataset.num_classes):
                raise DataError(
                    f"{where} has {part} label {int(labels.max())}; labels must be in "
                    f"0..{dataset.num_classes - 1} ({dataset.num_classes} classes)"
                )


def channel_statistics(
    images: np.ndarray, sample: int = 10_000
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``pixel / 255`` over (up to ``sample`` evenly spaced) uint8 images
    (N, C, H, W): the normalisation of a dataset that publishes none. A std of zero (a blank
    channel) becomes 1, so normalising never divides by zero."""
    step = max(1, len(images) // sample)
    pixels = images[::step].astype(np.float64) / PIXEL_MAX
    mean = pixels.mean(axis=(0, 2, 3))
    std = pixels.std(axis=(0, 2, 3))
    std[std < 1e-6] = 1.0
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
