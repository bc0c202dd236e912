"""``cnnlab evaluate RUN_DIR``: accuracy, per-class scores, confusions and the worst mistakes."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.commands.common import HelpFormatter, add_data_dir, add_run_dir

NAME = "evaluate"
EPILOG = """writes into --out (default: RUN_DIR):
  confusion-SPLIT.png       the confusion matrix, counts and share of each true class
  misclassified-SPLIT.png   the most confident mistakes: true label, predicted label, confidence
  evaluation-SPLIT.json     every number printed here

examples:
  cnnlab evaluate runs/X
  cnnlab evaluate runs/X --split valid --out /tmp/eval
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="score a trained run: per-class metrics, confusion matrix, mistakes",
        description="Evaluate a trained run on the test or validation split.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_run_dir(parser)
    parser.add_argument(
        "--split",
        choices=("test", "valid"),
        default="test",
        help="which images to score; valid is the run's own held-out split (default: test)",
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="where to write the pictures (default: RUN_DIR)"
    )
    add_data_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.report import metrics
    from cnnlab.report.confusion import format_confusion
    from cnnlab.runs import layout as rundir
    from cnnlab.runs.loader import load_run

    loaded = load_run(args.run_dir)
    out = rundir.require_writable_dir(args.out or loaded.path, "--out")
    ev = metrics.evaluate_run(loaded, args.split, args.data_dir)
    print(f"{loaded.path}: model {loaded.config.model}, {args.split} split, {len(ev.labels)} images")
    print(f"accuracy: {ev.accuracy:.2%}{training_note(loaded, ev)}\n")
    print(metrics.format_per_class(metrics.per_class(ev)) + "\n")
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(format_confusion(ev.confusion) + "\n")
    print("top confused pairs")
    print(metrics.format_pairs(metrics.confused_pairs(ev.confusion)) + "\n")
    written = write_outputs(ev, out, loaded.config.model)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def write_outputs(ev, out: Path, model: str) -> list[Path]:
    from cnnlab.report.confusion import confusion_figure, confusion_title
    from cnnlab.report.figures import save_png
    from cnnlab.report.gallery import misclassified_figure
    from cnnlab.report.metrics import as_json
    from cnnlab.runs import layout as rundir

    paths = [
        out / f"confusion-{ev.split}.png",
        out / f"misclassified-{ev.split}.png",
        out / f"evaluation-{ev.split}.json",
    ]
    save_png(confusion_figure(ev.confusion, confusion_title(ev, model)), paths[0])
    save_png(misclassified_figure(ev), paths[1])
    rundir.write_json(paths[2], as_json(ev))
    return paths


def training_note(loaded, ev) -> str:
    """Scores here are float32; a run trained under bf16/fp16 autocast measured its own test
    accuracy in that arithmetic, so near-tied images can differ. Say so rather than puzzle users."""
    summary = loaded.summary or {}
    if ev.split != "test" or summary.get("test_accuracy") is None or summary["test_accuracy"] == ev.accuracy:
        return ""
    return (
        f" in float32 (training measured {summary['test_accuracy']:.2%} "
        f"with {summary.get('precision', '?')} arithmetic)"
    )
