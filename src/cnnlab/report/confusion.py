"""The confusion matrix as text (for a terminal) and as a PNG (for the report)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from cnnlab.data import CLASS_NAMES
from cnnlab.report.figures import new_figure

__all__ = ["format_confusion", "confusion_figure", "confusion_title"]

# Column headers must be narrow enough that ten of them fit a terminal beside the row names.
CORNER = "true \\ predicted"
SHORT_NAMES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def format_confusion(confusion: np.ndarray) -> str:
    """Rows are true classes, columns predicted ones; the diagonal is the correct predictions."""
    width = max(max(map(len, SHORT_NAMES)), len(str(int(confusion.max()))))
    header = f"{CORNER:<16}" + "".join(f"{name:>{width + 1}}" for name in SHORT_NAMES)
    lines = [header]
    for name, row in zip(CLASS_NAMES, confusion):
        lines.append(f"{name:<16}" + "".join(f"{int(v):>{width + 1}d}" for v in row))
    return "\n".join(lines)


def confusion_figure(confusion: np.ndarray, title: str) -> Figure:
    """Counts in each cell; colour is the share of the true class (row), so rare and common
    classes read on one scale."""
    share = confusion / np.maximum(1, confusion.sum(axis=1, keepdims=True))
    fig = new_figure((8.6, 7.4))
    ax = fig.subplots()
    image = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(
            j,
            i,
            str(int(count)),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=40, ha="right")
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class (%)")
    return fig


def confusion_title(ev, model: str) -> str:
    return f"{model} on the {ev.split} split: {len(ev.labels)} images, accuracy {ev.accuracy:.2%}"
