"""The confusion matrix as text (for a terminal) and as a PNG (for the report)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from cnnlab.report.figures import new_figure

__all__ = ["format_confusion", "confusion_figure", "confusion_title"]

CORNER = "true \\ predicted"
COLUMN = 8  # column headers are cut to this many characters, so ten columns fit a terminal


def short_name(name: str) -> str:
    """A class name for a narrow column: "T-shirt/top" -> "T-shirt", "Ankle boot" -> "boot"."""
    name = name.split("/")[0]
    if len(name) > COLUMN:
        name = name.split()[-1]
    return name[:COLUMN]


def format_confusion(confusion: np.ndarray, class_names) -> str:
    """Rows are true classes, columns predicted ones; the diagonal is the correct predictions."""
    short = [short_name(name) for name in class_names]
    width = max(max(map(len, short)), len(str(int(confusion.max(initial=0)))))
    rows = max(len(CORNER), *(len(name) for name in class_names)) + 1
    header = f"{CORNER:<{rows}}" + "".join(f"{name:>{width + 1}}" for name in short)
    lines = [header]
    for name, row in zip(class_names, confusion):
        lines.append(f"{name:<{rows}}" + "".join(f"{int(v):>{width + 1}d}" for v in row))
    return "\n".join(lines)


def confusion_figure(confusion: np.ndarray, title: str, class_names) -> Figure:
    """Counts in each cell; colour is the share of the true class (row), so rare and common
    classes read on one scale."""
    share = confusion / np.maximum(1, confusion.sum(axis=1, keepdims=True))
    k = len(class_names)
    side = min(max(5.0, 0.55 * k + 3), 16.0)  # ten classes: the 8.6 x 7.4 inches of old
    fig = new_figure((side + 1.2, side))
    ax = fig.subplots()
    image = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    for (i, j), count in np.ndenumerate(
        confusion if k <= 30 else np.zeros((0, 0))
    ):  # 30+ classes: colour only
        ax.text(
            j,
            i,
            str(int(count)),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks(range(k), class_names, rotation=40, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class (%)")
    return fig


def confusion_title(ev, model: str) -> str:
    return f"{model} on the {ev.split} split: {len(ev.labels)} images, accuracy {ev.accuracy:.2%}"
