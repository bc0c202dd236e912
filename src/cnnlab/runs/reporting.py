"""What ``cnnlab evaluate`` and ``cnnlab report`` do to a run directory, as functions the commands
and the Python API share: load the run, score it on a split, write the pictures or the page.

They live in the runs layer, above training, because they start from the run loader; the numbers,
the pictures and the page itself come from ``cnnlab.report``, which knows nothing of run directories.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cnnlab import fileio
from cnnlab.errors import option
from cnnlab.report import gallery, metrics
from cnnlab.report.confusion import confusion_figure, confusion_title
from cnnlab.report.curves import history_figure
from cnnlab.report.figures import png_bytes, save_png
from cnnlab.report.html import ReportParts, render
from cnnlab.runs.loader import LoadedRun, load_run
from cnnlab.training import rundir

__all__ = ["write_report", "evaluate", "run_evaluation", "EvaluationResult", "REPORT_HTML"]

REPORT_HTML = "report.html"


def write_report(
    run_dir: str | Path | LoadedRun, output: str | Path | None = None, split: str = "test", data_dir=None
) -> Path:
    """Write one self-contained HTML page about the run (default: RUN_DIR/report.html) from its
    scores on ``split`` ("test" or "valid"); return where it went. ``run_dir`` may be a loaded run."""
    loaded = _load(run_dir)
    path = rundir.prepare_output(output if output else loaded.path / REPORT_HTML, option("output"))
    ev = evaluate_run(loaded, split, data_dir)
    fileio.write_text(path, render(report_parts(loaded, ev)), stream=True)
    return path


def evaluate_run(loaded: LoadedRun, split: str = "test", data_dir=None) -> metrics.Evaluation:
    """The run's predictions on ``split``, from the weights and the test-time augmentation it reported."""
    images, labels = loaded.images(split, data_dir)
    return metrics.Evaluation(split, images, labels, loaded.probabilities(images), loaded.class_names)


def report_parts(loaded: LoadedRun, ev: metrics.Evaluation) -> ReportParts:
    model = loaded.config.model
    conv = loaded.first_conv()
    return ReportParts(
        title=f"cnnlab run {loaded.path.name}: {model}, {ev.split} accuracy {ev.accuracy:.2%}",
        summary=summary_rows(loaded, ev),
        config=loaded.config.to_dict(),
        per_class=metrics.per_class(ev),
        pairs=metrics.confused_pairs(ev.confusion, ev.class_names),
        curves_png=curves_png(loaded),
        confusion_png=png_bytes(confusion_figure(ev.confusion, confusion_title(ev, model), ev.class_names)),
        misclassified_png=png_bytes(gallery.misclassified_figure(ev)),
        filters_png=None if conv is None else png_bytes(filters_figure(loaded, *conv)),
    )


def summary_rows(loaded: LoadedRun, ev: metrics.Evaluation) -> dict[str, str]:
    """What the run achieved. No config option here: the configuration table lists each once."""
    history, config, summary = loaded.history, loaded.config, loaded.summary
    rows = {
        "run directory": str(loaded.path),
        "epochs trained": f"{len(history)} of {config.epochs}",
        f"{ev.split} accuracy": f"{ev.accuracy:.2%} on {len(ev.labels)} images (float32)",
    }
    if summary and summary.get("test_accuracy") is not None:
        rows["test accuracy as training measured it"] = (
            f"{summary['test_accuracy']:.2%} ({summary.get('precision', '32')} arithmetic)"
        )
    best = rundir.best_validated(history)
    if best:
        rows["best validation accuracy"] = f"{best['valid_accuracy']:.2%} (epoch {best['epoch']})"
    if history:
        rows["training time"] = f"{history[-1]['seconds']:.1f} s"
    if summary is None:
        rows["status"] = f"unfinished: the run has no {rundir.SUMMARY} yet"
    return rows


def curves_png(loaded: LoadedRun) -> bytes | None:
    """The run's own loss.png, or one drawn from the checkpoint's history for an unfinished run."""
    saved = loaded.path / rundir.LOSS_PLOT
    if saved.is_file():
        return saved.read_bytes()
    if not loaded.history:
        return None
    return png_bytes(history_figure(loaded.history, title=loaded.config.model))


def filters_figure(loaded: LoadedRun, layer: str, weights):
    """The first-layer filters figure, headed as ``cnnlab show filters`` heads it."""
    title = f"{loaded.config.model} ({loaded.path.name}), layer {layer}"
    return gallery.filters_figure(weights, title=title)


@dataclasses.dataclass
class EvaluationResult:
    """A run scored on one split: the run, the predictions, the numbers, and the files written."""

    run: LoadedRun
    evaluation: metrics.Evaluation
    metrics: dict  # what evaluation-SPLIT.json holds: accuracy, per_class, confusion, confused_pairs...
    written: list[Path]  # confusion-SPLIT.png, misclassified-SPLIT.png, evaluation-SPLIT.json; [] unsaved


def evaluate(
    run_dir: str | Path | LoadedRun,
    split: str = "test",
    data_dir=None,
    save: bool = True,
    out: str | Path | None = None,
) -> dict:
    """Score the run on ``split`` ("test" or "valid", the run's own held-out images) with the
    weights it reported; return the metrics (accuracy, per-class precision/recall/F1, the
    confusion matrix, the most confused pairs). With ``save``, also write the confusion matrix,
    the most confident mistakes and the metrics into ``out`` (default: the run directory)."""
    return run_evaluation(run_dir, split, data_dir, save, out).metrics


def run_evaluation(
    run_dir: str | Path | LoadedRun,
    split: str = "test",
    data_dir=None,
    save: bool = True,
    out: str | Path | None = None,
) -> EvaluationResult:
    """``evaluate``, keeping the loaded run, the predictions and the paths written (for the command)."""
    loaded = _load(run_dir)
    directory = fileio.require_writable_dir(out or loaded.path, option("out")) if save else None
    ev = evaluate_run(loaded, split, data_dir)
    numbers = metrics.as_json(ev)
    written = [] if directory is None else write_evaluation(ev, numbers, directory, loaded.config.model)
    return EvaluationResult(loaded, ev, numbers, written)


def write_evaluation(ev: metrics.Evaluation, numbers: dict, out: Path, model: str) -> list[Path]:
    paths = [
        out / f"confusion-{ev.split}.png",
        out / f"misclassified-{ev.split}.png",
        out / f"evaluation-{ev.split}.json",
    ]
    save_png(confusion_figure(ev.confusion, confusion_title(ev, model), ev.class_names), paths[0])
    save_png(gallery.misclassified_figure(ev), paths[1])
    fileio.write_json(paths[2], numbers)
    return paths


def _load(run: str | Path | LoadedRun) -> LoadedRun:
    return run if isinstance(run, LoadedRun) else load_run(run)
