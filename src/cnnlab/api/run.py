"""``cnnlab.load_run`` and ``Run``: a run directory as an object for notebooks.

A ``Run`` reads its files when asked (config.json, metrics.csv, summary.json) and loads the model
once, through the same run loader as ``cnnlab evaluate``, so it scores, predicts and exports with
the weights the run reported (the best epoch's under early stopping, else the EMA average).
"""

from __future__ import annotations

import base64
import functools
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.errors import CnnlabError, ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.runs.loader import LoadedRun
    from cnnlab.training.config import TrainConfig

EXPORT_FORMATS = ("onnx", "safetensors")


def load_run(path: str | Path) -> Run:
    """The run in ``path`` (a directory made by ``cnnlab train`` or ``cnnlab.train``)."""
    return Run(path)


class Run:
    """A trained (or still training) run directory: its config, history, summary and model."""

    def __init__(self, path: str | Path):
        from cnnlab.runs import layout
        from cnnlab.training.config import config_of_run

        self.path = layout.require_run_dir(path)
        self.config: TrainConfig = config_of_run(self.path)

    def __repr__(self) -> str:
        accuracy = self.summary["test_accuracy"] if self.summary else None
        scored = f"test accuracy {accuracy:.2%}" if accuracy is not None else "unfinished"
        return f"Run({str(self.path)!r}: {self.config.model}, {len(self.history)} epoch(s), {scored})"

    @property
    def history(self) -> list[dict[str, float]]:
        """One dict per finished epoch, as metrics.csv holds them (epoch, losses, accuracies, lr, seconds)."""
        from cnnlab.runs import layout

        path = self.path / layout.METRICS
        if not path.is_file():  # killed before metrics.csv caught up: the checkpoint holds the history
            return list(self.loaded.history) if (self.path / layout.CHECKPOINT).is_file() else []
        return layout.read_metrics(path)

    def history_frame(self) -> Any:
        """``history`` as a pandas DataFrame indexed by epoch."""
        try:
            import pandas as pd
        except ImportError:
            raise CnnlabError("history_frame() needs pandas; install it with `pip install pandas`") from None
        return pd.DataFrame(self.history).set_index("epoch") if self.history else pd.DataFrame()

    @property
    def summary(self) -> dict[str, Any] | None:
        """summary.json (test accuracy, epochs, seconds, ...), or None while the run is unfinished."""
        from cnnlab.runs import layout

        path = self.path / layout.SUMMARY
        return layout.read_json(path) if path.is_file() else None

    @functools.cached_property
    def loaded(self) -> LoadedRun:
        """The run loaded by the one run loader: config, history and the torch model in eval mode."""
        from cnnlab.runs.loader import load_run as load

        return load(self.path)

    @property
    def model(self) -> Any:
        """The torch model with the weights the run reported, in eval mode on the CPU."""
        return self.loaded.model

    def plot(self) -> Figure:
        """The training curves: losses on twin axes (the notebook's plot) and accuracies."""
        from cnnlab.report.curves import history_figure

        if not self.history:
            raise CnnlabError(f"{self.path} has no finished epoch to plot yet")
        return history_figure(self.history, title=self.config.title)

    def evaluate(self, split: str = "test", data_dir: str | None = None) -> dict[str, Any]:
        """Scores on ``split`` ("test" or "valid"): accuracy, per-class precision/recall/F1, the
        confusion matrix and the most confused pairs. Writes nothing."""
        from cnnlab.runs.reporting import evaluate

        return evaluate(self.loaded, split, data_dir, save=False)

    def predict(self, images: Any, top: int = 3, invert: bool | None = None) -> list[dict[str, Any]]:
        """The ``top`` classes for each image: uint8 arrays shaped as the run's images ((H, W) or
        (N, H, W) for gray, (C, H, W) or (N, C, H, W)), or paths of photos (PNG, JPEG), prepared as
        ``cnnlab predict`` prepares them."""
        from cnnlab.data.images import prepare, read_image
        from cnnlab.report.metrics import top_classes

        loaded = self.loaded
        classes = loaded.dataset.num_classes
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= classes:
            raise ConfigError(f"top must be between 1 and {classes}. Received: {top!r}")
        if isinstance(images, (str, Path)):
            images = [images]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
            color = loaded.dataset.color
            batch = np.stack([prepare(read_image(p, color), loaded.dataset, invert).image for p in images])
            names = [str(p) for p in images]
        else:
            batch = _as_images(images, loaded.input_shape)
            names = [f"image {i}" for i in range(len(batch))]
        tops = top_classes(loaded.probabilities(batch), loaded.class_names, top)
        return [{"image": name, "top": t} for name, t in zip(names, tops)]

    def report(self, output: str | Path | None = None, split: str = "test") -> Path:
        """Write report.html (default: into the run directory) and return its path."""
        from cnnlab.runs.reporting import write_report

        return write_report(self.loaded, output, split)

    def export(self, format: str = "onnx", output: str | Path | None = None) -> Path:
        """Write the model as ONNX or safetensors (default: RUN_DIR/model.FORMAT); return the path."""
        from cnnlab.runs.export import export

        if format not in EXPORT_FORMATS:
            raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}. Received: {format!r}")
        return export(self.loaded, format, output)

    def _repr_html_(self) -> str:
        """A compact card for Jupyter: model, accuracy, curves thumbnail, where it is saved."""
        summary = self.summary or {}
        accuracy = summary.get("test_accuracy")
        rows = {
            "model": f"{self.config.model} ({self.config.backend} backend)",
            "preset": self.config.preset or "none",
            "epochs": f"{len(self.history)} of {self.config.epochs}",
            "test accuracy": f"{accuracy:.2%}" if accuracy is not None else "not yet measured",
            "saved in": str(self.path),
        }
        table = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
        )
        return (
            '<div class="cnnlab-run" style="display:flex;gap:1em;align-items:center">'
            f"<table>{table}</table>{self._thumbnail()}</div>"
        )

    def _thumbnail(self) -> str:
        if not self.history:
            return ""
        from cnnlab.report.figures import png_bytes

        figure = self.plot()
        figure.set_size_inches(5.5, 2.1)
        data = base64.b64encode(png_bytes(figure, dpi=60)).decode("ascii")
        return f'<img alt="training curves" src="data:image/png;base64,{data}">'


def _as_images(images: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (N, C, H, W) from one image or a batch shaped as the run's images; a clear error else."""
    channels, height, width = shape
    array = _pixel_array(images)
    if array.ndim == 2 and channels == 1:
        array = array[None, None]
    elif array.ndim == 3:
        array = array[None] if array.shape == shape else array[:, None] if channels == 1 else array
    if array.ndim != 4 or array.shape[1:] != shape:
        gray = f"{height}x{width} (one, or a batch N x {height} x {width}), or " if channels == 1 else ""
        raise ConfigError(
            f"images must be {gray}{channels} x {height} x {width} (one, or a batch "
            f"N x {channels} x {height} x "
            f"{width}), or paths of photos. Received: shape {array.shape}"
        )
    if array.dtype != np.uint8:
        if array.dtype.kind == "f" and array.size and 0 < array.max() <= 1 and array.min() >= 0:
            raise ConfigError(
                "images must hold pixel values from 0 to 255; these are all in 0..1 (as ToTensor "
                "gives them), so multiply them by 255"
            )
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
            raise ConfigError("images must hold pixel values from 0 to 255, as uint8 images do")
        array = np.round(array).astype(np.uint8)
    return array


def _pixel_array(images: Any) -> np.ndarray:
    """``images`` as a NumPy array of real numbers (bool, integer or float), or a ConfigError: strings,
    objects and complex numbers are no pixels, and would fail deep in the conversion."""
    try:
        array = np.asarray(images)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ConfigError(
            f"images must be an array of pixel values ({' '.join(str(exc).split())[:120]})"
        ) from None
    if array.dtype.kind not in "biuf":
        raise ConfigError(
            "images must hold pixel values (integers or floats from 0 to 255), or be paths of photos. "
            f"Received: an array of dtype {array.dtype}"
        )
    return array
