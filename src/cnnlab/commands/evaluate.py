"""``cnnlab evaluate RUN_DIR``: accuracy, per-class scores, confusions and the worst mistakes."""

from __future__ import annotations

import argparse

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
    from cnnlab.runs.reporting import run_evaluation

    result = run_evaluation(args.run_dir, args.split, args.data_dir, out=args.out)
    loaded, ev, numbers = result.run, result.evaluation, result.metrics
    print(f"{loaded.path}: model {loaded.config.model}, {args.split} split, {numbers['images']} images")
    print(f"accuracy: {numbers['accuracy']:.2%}{training_note(loaded, ev)}\n")
    print(metrics.format_per_class(numbers["per_class"]) + "\n")
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(format_confusion(ev.confusion, ev.class_names) + "\n")
    print("top confused pairs")
    print(metrics.format_pairs(numbers["confused_pairs"]) + "\n")
    print("wrote " + ", ".join(str(p) for p in result.written))
    return 0


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
