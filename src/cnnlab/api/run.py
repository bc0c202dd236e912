"""``cnnlab.load_run`` and ``Run``: a run directory as an object for notebooks.

A ``Run`` reads its files when asked (config.json, metrics.csv, summary.json) and loads the model
once, through the same run loader as ``cnnlab evaluate``, so it scores, predicts and exports with
the weights the run reported (the best epoch's under early stopping, else the EMA average).
"""

from __future__ import annotations

import base64
import csv
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
        path = self.path / "metrics.csv"
        if not path.is_file():  # killed before metrics.csv caught up: the checkpoint holds the history
            return list(self.loaded.history) if (self.path / "checkpoint.pt").is_file() else []
        with open(path, newline="") as fh:
            return [
                {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(fh)
            ]

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
        """The ``top`` classes for each image: uint8 arrays (28, 28) or (N, 28, 28) in Fashion-MNIST's
        style, or paths of photos (PNG, JPEG), prepared as ``cnnlab predict`` prepares them."""
        from cnnlab.data import NUM_CLASSES
        from cnnlab.data.images import read_gray, to_fashion_mnist
        from cnnlab.report.metrics import top_classes

        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= NUM_CLASSES:
            raise ConfigError(f"top must be between 1 and {NUM_CLASSES}. Received: {top!r}")
        if isinstance(images, (str, Path)):
            images = [images]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
            batch = np.stack([to_fashion_mnist(read_gray(p), invert).image for p in images])
            names = [str(p) for p in images]
        else:
            batch = _as_images(images)
            names = [f"image {i}" for i in range(len(batch))]
        tops = top_classes(self.model, batch, top, tta=self.config.tta, tta_shift=self.config.tta_shift)
        return [{"image": name, "top": t} for name, t in zip(names, tops)]

    def saliency(
        self, images: Any, method: str = "gradcam", layer: Any = None, target: Any = None
    ) -> np.ndarray:
        """Where the model looks: float32 (N, H, W), one map per image at the input's size.

        ``images`` as ``predict`` takes them (uint8 arrays in Fashion-MNIST's style, PIL images or
        paths of photos). ``method``: "gradcam" (of convolution ``layer``, named as `cnnlab summary`
        lists it; None: the last), "gradient" or "occlusion" (``cnnlab.inspect.saliency`` says what
        each computes). ``target``: the class to explain, one per image, or None for each image's
        predicted class."""
        from cnnlab.data import BACKGROUND, normalize
        from cnnlab.data.images import photos_to_images
        from cnnlab.inspect.saliency import explainer_for

        if isinstance(images, (str, Path)) or hasattr(images, "getpixel"):  # a path or a PIL image
            images = [images]
        if isinstance(images, (list, tuple)) and images and not isinstance(images[0], (np.ndarray, list)):
            batch = photos_to_images(images)
        else:
            batch = _as_images(images)
        return explainer_for(self.model).maps(normalize(batch), method, layer, target, BACKGROUND)[0]

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


def _as_images(images: Any) -> np.ndarray:
    """uint8 (N, 28, 28) from one image or a batch; a clear error for anything else."""
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise ConfigError(
            "images must be 28x28 (one, or a batch N x 28 x 28), or paths of photos. "
            f"Received: shape {array.shape}"
        )
    if array.dtype != np.uint8:
        if array.dtype.kind == "f" and array.size and 0 < array.max() <= 1 and array.min() >= 0:
            raise ConfigError(
                "images must hold pixel values from 0 to 255; these are all in 0..1 (as ToTensor "
                "gives them), so multiply them by 255"
            )
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
            raise ConfigError(
                "images must hold pixel values from 0 to 255, as Fashion-MNIST's uint8 images do"
            )
        array = np.round(array).astype(np.uint8)
    return array
