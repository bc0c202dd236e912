"""``cnnlab report RUN_DIR``: one self-contained report.html about a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.commands.common import HelpFormatter, add_data_dir, add_run_dir

NAME = "report"
EPILOG = """The page holds the summary, the config, the training curves, the per-class table, the
confusion matrix, the most confident mistakes and the first-layer filters. Images are embedded,
so the one file can be mailed or opened offline.

examples:
  cnnlab report runs/X                  # writes runs/X/report.html
  cnnlab report runs/X --output /tmp/x.html --split valid
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="write a self-contained report.html for a trained run",
        description="Write one self-contained HTML page about a trained run.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_run_dir(parser)
    parser.add_argument(
        "--output", default=None, metavar="FILE", help="where to write (default: RUN_DIR/report.html)"
    )
    parser.add_argument(
        "--split",
        choices=("test", "valid"),
        default="test",
        help="which images the scores and pictures use (default: test)",
    )
    add_data_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.report import gallery, metrics
    from cnnlab.report.confusion import confusion_figure, confusion_title
    from cnnlab.report.figures import png_bytes
    from cnnlab.report.html import ReportParts, render
    from cnnlab.runs import layout as rundir
    from cnnlab.runs.loader import load_run

    loaded = load_run(args.run_dir)
    output = Path(args.output) if args.output else loaded.path / "report.html"
    rundir.require_writable_dir(output.parent, "--output")
    ev = metrics.evaluate_run(loaded, args.split, args.data_dir)
    conv = gallery.first_conv(loaded.model)
    parts = ReportParts(
        title=f"cnnlab run {loaded.path.name}: {loaded.config.model}, {ev.split} accuracy {ev.accuracy:.2%}",
        summary=summary_rows(loaded, ev),
        config=loaded.config.to_dict(),
        per_class=metrics.per_class(ev),
        pairs=metrics.confused_pairs(ev.confusion),
        curves_png=curves_png(loaded),
        confusion_png=png_bytes(confusion_figure(ev.confusion, confusion_title(ev, loaded.config.model))),
        misclassified_png=png_bytes(gallery.misclassified_figure(ev)),
        filters_png=None if conv is None else png_bytes(filters_figure(loaded, *conv)),
    )
    rundir.write_text(output, render(parts))
    print(f"report written to: {output}")
    return 0


def summary_rows(loaded, ev) -> dict:
    history, config = loaded.history, loaded.config
    rows = {
        "run directory": str(loaded.path),
        "model": config.model,
        "preset": config.preset or "none",
        "epochs trained": f"{len(history)} of {config.epochs}",
        f"{ev.split} accuracy": f"{ev.accuracy:.2%} on {len(ev.labels)} images (float32)",
    }
    if loaded.summary and loaded.summary.get("test_accuracy") is not None:
        rows["test accuracy as training measured it"] = (
            f"{loaded.summary['test_accuracy']:.2%} ({loaded.summary.get('precision', '32')} arithmetic)"
        )
    if history:
        best = max(history, key=lambda r: r["valid_accuracy"])
        rows["best validation accuracy"] = f"{best['valid_accuracy']:.2%} (epoch {best['epoch']})"
        rows["training time"] = f"{history[-1]['seconds']:.1f} s"
    if loaded.summary is None:
        rows["status"] = "unfinished: the run has no summary.json yet"
    return rows


def curves_png(loaded) -> bytes | None:
    """The run's own loss.png, or one drawn from the checkpoint's history for an unfinished run."""
    from cnnlab.report.curves import history_figure
    from cnnlab.report.figures import png_bytes
    from cnnlab.runs import layout as rundir

    saved = loaded.path / rundir.LOSS_PLOT
    if saved.is_file():
        return saved.read_bytes()
    if not loaded.history:
        return None
    return png_bytes(history_figure(loaded.history, title=loaded.config.model))


def filters_figure(loaded, layer: str, weights):
    """The figure ``cnnlab show filters`` draws, with the same heading."""
    from cnnlab.report import gallery

    return gallery.filters_figure(weights, title=f"{loaded.config.model} ({loaded.path.name}), layer {layer}")
