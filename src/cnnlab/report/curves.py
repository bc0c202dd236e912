"""Training curves: loss on twin axes as in the notebook, accuracy beside it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from cnnlab.report.figures import new_figure, save_png

__all__ = ["history_figure", "plot_history"]

TRAIN_COLOR, VALID_COLOR = "tab:blue", "tab:orange"


def plot_history(history: Sequence[dict], path: Path, title: str = "") -> None:
    """Write ``history_figure`` to ``path`` as a PNG (``loss.png`` in a run directory)."""
    save_png(history_figure(history, title), path)


def history_figure(history: Sequence[dict], title: str = "") -> Figure:
    """The training curves of ``history`` (one dict per epoch, as metrics.csv's rows).

    Left: train loss (left axis) and validation loss (right axis), as the notebook plots them,
    so each curve fills its own scale and the turn of the validation loss (overfitting) shows.
    Right: train and validation accuracy on one axis (and test accuracy when measured per epoch).
    A run without a validation split (``--valid-size 0``) shows its train curves alone."""
    epochs = [r["epoch"] for r in history]
    fig = new_figure((11, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", color=TRAIN_COLOR, label="train loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("train loss (cross-entropy)", color=TRAIN_COLOR)
    ax_loss.tick_params(axis="y", labelcolor=TRAIN_COLOR)
    # A run without a validation split (--valid-size 0) has nothing to draw on the second axis; its
    # rows' validation accuracy is NaN (metrics.csv's rule, cnnlab.training.rundir.validated).
    validated = not any(math.isnan(r["valid_accuracy"]) for r in history)
    ax_loss.set_title("Loss (twin axes)" if validated else "Loss (no validation split)")
    if validated:
        _validation_loss(ax_loss, history)

    ax_acc.plot(epochs, [100 * r["train_accuracy"] for r in history], "o-", color=TRAIN_COLOR, label="train")
    if validated:
        ax_acc.plot(
            epochs, [100 * r["valid_accuracy"] for r in history], "s-", color=VALID_COLOR, label="validation"
        )
    if "test_accuracy" in history[0]:
        ax_acc.plot(
            epochs, [100 * r["test_accuracy"] for r in history], "^--", color="tab:green", label="test"
        )
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("Accuracy")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=9)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def _validation_loss(ax_loss, history: Sequence[dict]) -> None:
    """The validation loss on a twin of ``ax_loss``, its lowest point marked, one legend for both."""
    ax_valid = ax_loss.twinx()
    ax_valid.plot(
        [r["epoch"] for r in history],
        [r["valid_loss"] for r in history],
        "s-",
        color=VALID_COLOR,
        label="validation loss",
    )
    ax_valid.set_ylabel("validation loss (cross-entropy)", color=VALID_COLOR)
    ax_valid.tick_params(axis="y", labelcolor=VALID_COLOR)
    if len(history) < TWIN_SCALES_FROM:
        _one_scale(ax_loss, ax_valid)
    best = min(history, key=lambda r: r["valid_loss"])
    ax_valid.axvline(best["epoch"], color="grey", ls=":", lw=1)
    _note_lowest(ax_valid, best, [r["epoch"] for r in history])
    # Only the two curves: the marker line's automatic "_child" label must not reach the legend.
    lines = [ln for ln in ax_loss.get_lines() + ax_valid.get_lines() if not ln.get_label().startswith("_")]
    ax_loss.legend(lines, [ln.get_label() for ln in lines], loc="upper right", fontsize=9)


# Twin axes give each curve its own scale, which with two points draws both as the same diagonal
# from corner to corner; below this many epochs both share one scale instead.
TWIN_SCALES_FROM = 3


def _one_scale(ax_loss, ax_valid) -> None:
    values = [y for ax in (ax_loss, ax_valid) for line in ax.get_lines() for y in line.get_ydata()]
    low, high = min(values), max(values)
    pad = 0.08 * (high - low or abs(high) or 1.0)  # the points clear of the frame
    for ax in (ax_loss, ax_valid):
        ax.set_ylim(low - pad, high + pad)
    ax_loss.set_title("Loss (one scale: too few epochs for twin axes)")


def _note_lowest(ax_valid, best: dict, epochs: list[int]) -> None:
    """ "lowest validation loss (epoch N)" beside its point, on the side with room, so it never runs
    over the axes' edge and the tick labels there."""
    (x0, x1), (y0, y1) = ax_valid.get_xlim(), ax_valid.get_ylim()
    right = (best["epoch"] - x0) / ((x1 - x0) or 1) > 0.5
    high = (best["valid_loss"] - y0) / ((y1 - y0) or 1) > 0.7
    ax_valid.annotate(
        f"lowest validation loss\n(epoch {best['epoch']})",
        (best["epoch"], best["valid_loss"]),
        textcoords="offset points",
        xytext=(-6 if right else 6, -10 if high else 10),
        ha="right" if right else "left",
        va="top" if high else "bottom",
        fontsize=8,
        color="grey",
        bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.85),  # over a curve
    )
