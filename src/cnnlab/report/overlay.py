"""Overlay plots for ``cnnlab compare``: one colour per configuration, a band across seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from cnnlab.report.figures import new_figure, save_png

__all__ = ["overlay_figure", "plot_overlay"]


def plot_overlay(outcomes, path: Path, title: str = "") -> None:
    """Write ``overlay_figure`` to ``path`` as a PNG (``compare_loss.png``)."""
    save_png(overlay_figure(outcomes, title), path)


def overlay_figure(outcomes, title: str = "") -> Figure:
    """Train and validation loss per epoch: the mean over seeds as a line, min to max as a band."""
    fig = new_figure((12, 4.5))
    axes = fig.subplots(1, 2, sharey=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = list(dict.fromkeys((o.optimizer, o.lr) for o in outcomes))
    for color, key in zip(colors * 3, keys):
        histories = [o.history for o in outcomes if (o.optimizer, o.lr) == key and o.history]
        if not histories:
            continue
        for ax, metric in zip(axes, ("train_loss", "valid_loss")):
            length = min(len(h) for h in histories)
            values = np.array([[row[metric] for row in h[:length]] for h in histories])  # (seeds, epochs)
            epochs = np.arange(1, length + 1)
            ax.plot(epochs, values.mean(0), "o-", color=color, ms=3, label=f"{key[0]}, lr {key[1]:g}")
            if len(values) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=color, alpha=0.2, lw=0)
    for ax, name in zip(axes, ("Training loss", "Validation loss")):
        ax.set_title(f"{name} (mean over seeds; band: min to max)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig
