"""``cnnlab.load_run`` and ``Run``: a run directory as an object for notebooks.

A ``Run`` reads its files when asked (config.json, metrics.csv, summary.json) and loads the model
once, through the same run loader as ``cnnlab evaluate``, so it scores, predicts and exports with
the weights the run reported (the best epoch's under early stopping, else the EMA average).

Those weights are the run's own: ``evaluate``, ``predict`` and the pictures use a copy that nothing
outside can reach, always in evaluation mode, while ``run.model`` is a second copy that is the
user's to change (``run.model.train()``, fine-tuning, hooks) without changing what the run reports.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.api.edge import api_edge
from cnnlab.api.pictures import RunPictures
from cnnlab.errors import CnnlabError, ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.api.inputs import PreparedInput
    from cnnlab.api.predictions import Predictions
    from cnnlab.data.dataset import Dataset
    from cnnlab.report.metrics import Evaluation
    from cnnlab.runs.loader import LoadedRun
    from cnnlab.training.config import TrainConfig

EXPORT_FORMATS = ("onnx", "safetensors")


@api_edge
def load_run(path: str | Path) -> Run:
    """The run in ``path`` (a directory made by ``cnnlab train`` or ``cnnlab.train``)."""
    return Run(path)


class Run(RunPictures):
    """A trained (or still training) run directory: its config, history, summary and model.

    Attributes:
        path: the run directory, a ``Path``.
        config: every option the run trained with (its ``config.json``), shown in Jupyter as a table
            of every option, the changed ones with their default.
    """

    @api_edge
    def __init__(self, path: str | Path):
        from cnnlab.training import rundir
        from cnnlab.training.config import config_of_run

        self.path = rundir.require_run_dir(path)
        self.config: TrainConfig = config_of_run(self.path)
        self._evaluations: dict[tuple[str, str | None], Evaluation] = {}

    def __repr__(self) -> str:
        accuracy = self.summary["test_accuracy"] if self.summary else None
        scored = f"test accuracy {accuracy:.2%}" if accuracy is not None else "unfinished"
        return f"Run({str(self.path)!r}: {self.config.model}, {len(self.history)} epoch(s), {scored})"

    @property
    def history(self) -> list[dict[str, float]]:
        """One dict per finished epoch, as metrics.csv holds them (epoch, losses, accuracies, lr, seconds)."""
        from cnnlab.training import rundir

        path = self.path / rundir.METRICS
        if not path.is_file():  # killed before metrics.csv caught up: the checkpoint holds the history
            return list(self._loaded.history) if (self.path / rundir.CHECKPOINT).is_file() else []
        return rundir.read_metrics(path)

    @api_edge
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
        from cnnlab.training import rundir

        path = self.path / rundir.SUMMARY
        return rundir.read_json(path) if path.is_file() else None

    @functools.cached_property
    def dataset(self) -> Dataset:
        """The dataset the run trained on (``dataset.json``): its classes, input shape, normalisation."""
        from cnnlab.training.records import dataset_of_run

        return dataset_of_run(self.path)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input to the model; every input ``predict`` takes is prepared to it."""
        return self.dataset.input_shape

    @property
    def class_names(self) -> tuple[str, ...]:
        """The names of the classes the model predicts, in the order of its outputs."""
        return self.dataset.classes

    @functools.cached_property
    def _loaded(self) -> LoadedRun:
        """The run loaded by the one run loader; its model is this Run's own copy, never handed out."""
        from cnnlab.runs.loader import load_run as load

        return load(self.path)

    @functools.cached_property
    def model(self) -> Any:
        """The torch model with the weights the run reported, on the CPU, in eval mode: a copy that is
        yours to change. ``evaluate``, ``predict`` and the pictures keep using the saved weights."""
        return copy.deepcopy(self._loaded.model).eval()

    def _scoring_model(self) -> Any:
        return self._loaded.model.eval()  # eval mode always: batch norm's running statistics, no dropout

    @api_edge
    def plot(self) -> Figure:
        """The training curves: losses on twin axes (the notebook's plot) and accuracies."""
        from cnnlab.report.curves import history_figure

        if not self.history:
            raise CnnlabError(f"{self.path} has no finished epoch to plot yet")
        return history_figure(self.history, title=self.config.title)

    @api_edge
    def evaluate(self, split: str = "test", data_dir: str | None = None) -> dict[str, Any]:
        """Scores on ``split`` ("test" or "valid"), computed in float32: accuracy, per-class
        precision/recall/F1, the confusion matrix and the most confused pairs. Writes nothing."""
        from cnnlab.report.metrics import as_json

        return as_json(self._evaluation(split, data_dir))

    def _evaluation(self, split: str, data_dir: str | None) -> Evaluation:
        from cnnlab.runs.reporting import evaluate_run

        key = (split, data_dir)
        if key not in self._evaluations:  # the weights never change, so neither do their scores
            self._scoring_model()
            self._evaluations[key] = evaluate_run(self._loaded, split, data_dir)
        return self._evaluations[key]

    @api_edge
    def prepare(self, image: Any, invert: bool | None = None) -> PreparedInput:
        """``image`` as the model sees it (``np.asarray(run.prepare(x))``: uint8, ``input_shape``):
        a path, a PIL image or an array (H, W), (C, H, W), (H, W, C), gray or colour. A gray image of
        the model's size is taken as it is (light item on black, as Fashion-MNIST draws it); anything
        else is prepared as ``cnnlab predict`` prepares a photo. ``invert``: None decides from the
        photo's border; True or False forces it."""
        from cnnlab.api.inputs import prepare_image

        return prepare_image(image, self.dataset, invert, "image")

    @api_edge
    def predict(self, images: Any, top: int = 3, invert: bool | None = None) -> Predictions:
        """Class probabilities for one image or a batch: (N, H, W), (N, C, H, W), (N, H, W, C), a
        list of images, PIL images or paths of photos, each prepared by ``prepare``. The result has
        ``.probabilities`` (N, classes), ``.top`` (the ``top`` most probable classes of each),
        ``.inputs`` (what the model saw) and ``.inverted``; ``result[i]`` is a dict."""
        from cnnlab.api.inputs import prepare_image, split_batch
        from cnnlab.api.predictions import Predictions

        classes = len(self.class_names)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= classes:
            raise ConfigError(f"top must be between 1 and {classes}. Received: {top!r}")
        prepared = [
            prepare_image(image, self.dataset, invert, name)
            for image, name in split_batch(images, self.input_shape)
        ]
        inputs = np.stack([p.image for p in prepared])  # (N, C, H, W)
        self._scoring_model()
        probs = self._loaded.probabilities(inputs)  # the run's normalisation and test-time augmentation
        return Predictions(
            [p.name for p in prepared], probs, inputs, [p.inverted for p in prepared], self.class_names, top
        )

    @api_edge
    @api_edge
    def saliency(
        self,
        images: Any,
        method: str = "gradcam",
        layer: Any = None,
        target: Any = None,
        invert: bool | None = None,
    ) -> np.ndarray:
        """Where the model looks: float32 (N, H, W), one map per image at the input's size.

        ``images`` as ``predict`` takes them (arrays, PIL images or paths, each prepared by
        ``prepare``). ``method``: "gradcam" (of convolution ``layer``, named as `cnnlab summary`
        lists it; None: the last), "gradient" or "occlusion" (``cnnlab.inspect.saliency`` says what
        each computes). ``target``: the class to explain, one per image, or None for each image's
        predicted class."""
        from cnnlab.api.inputs import prepare_image, split_batch
        from cnnlab.inspect.saliency import explainer_for, occlusion_baseline

        prepared = [
            prepare_image(image, self.dataset, invert, name)
            for image, name in split_batch(images, self.input_shape)
        ]
        inputs = self.dataset.normalize(np.stack([p.image for p in prepared]))  # (N, C, H, W)
        baseline = occlusion_baseline(self.dataset)
        return explainer_for(self.model).maps(inputs, method, layer, target, baseline)[0]

    def report(self, output: str | Path | None = None, split: str = "test") -> Path:
        """Write report.html (default: into the run directory) and return its path."""
        from cnnlab.runs.reporting import write_report

        self._scoring_model()
        return write_report(self._loaded, output, split)

    @api_edge
    def export(self, format: str = "onnx", output: str | Path | None = None) -> Path:
        """Write the model as ONNX or safetensors (default: RUN_DIR/model.FORMAT); return the path."""
        from cnnlab.runs.export import export

        if format not in EXPORT_FORMATS:
            raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}. Received: {format!r}")
        self._scoring_model()
        return export(self._loaded, format, output)

    # What the picture methods (RunPictures) work with.
    def _trained(self) -> LoadedRun:
        self._scoring_model()
        return self._loaded

    def _test_images(self, data_dir: str | None) -> np.ndarray:
        return self._loaded.images("test", data_dir)[0]

    def _input(self, image: Any, data_dir: str | None) -> tuple[np.ndarray, str]:
        """(uint8 (C, H, W) as the model sees it, its name in a picture) for a test index or an image."""
        from cnnlab.inspect.features import test_image_name

        if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
            images, labels = self._loaded.images("test", data_dir)
            index = int(image)
            if not 0 <= index < len(labels):
                raise ConfigError(
                    f"image must be in 0..{len(labels) - 1} (the test set's indices). Received: {index}"
                )
            return images[index], test_image_name(index, int(labels[index]), self.class_names)
        prepared = self.prepare(image)
        return prepared.image, "your image" + (" (inverted)" if prepared.inverted else "")

    def _repr_html_(self) -> str:
        """A card for Jupyter: model, accuracy (and in which arithmetic), curves, where it is saved."""
        from cnnlab.report.display import image_tag, note, table

        summary = self.summary or {}
        accuracy = summary.get("test_accuracy")
        rows = [
            ("model", f"{self.config.model} ({self.config.backend} backend)"),
            ("preset", self.config.preset or "none"),
            ("epochs", f"{len(self.history)} of {self.config.epochs}"),
            ("test accuracy", f"{accuracy:.2%}" if accuracy is not None else "not yet measured"),
            ("saved in", str(self.path)),
        ]
        why = _arithmetic_note(summary)
        curves = image_tag(self.plot(), "training curves", scale=0.5) if self.history else ""
        return (
            '<div class="cnnlab-run" style="display:flex;gap:1em;align-items:center">'
            f"<div>{table(None, rows, first_is_header=True)}{note(why) if why else ''}</div>{curves}</div>"
        )


def _arithmetic_note(summary: dict[str, Any]) -> str:
    """Why ``evaluate()`` may differ from the test accuracy training measured, when it can."""
    precision = summary.get("precision")
    if summary.get("test_accuracy") is None or precision in (None, "32"):
        return ""
    name = {"bf16": "bfloat16", "16-mixed": "float16"}.get(precision, precision)
    return (
        f"The test accuracy was measured at the end of training under {name} autocast, as the run "
        "trained; evaluate() computes in float32, so a few images whose top two classes nearly tie "
        "can fall the other way and its accuracy can differ slightly."
    )
