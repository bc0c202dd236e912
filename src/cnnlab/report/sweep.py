"""The learning-rate range test's plot: the loss against the rate, and the suggested rate."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from cnnlab.report.figures import new_figure, save_png

__all__ = ["sweep_figure", "plot_sweep"]


def plot_sweep(result, path: Path, title: str = "") -> None:
    """Write ``sweep_figure`` to ``path`` as a PNG (``lr_find.png``)."""
    save_png(sweep_figure(result, title), path)


def sweep_figure(result, title: str = "") -> Figure:
    """``result`` is a ``cnnlab.training.lr_find.Sweep``: the rates, the raw and smoothed losses, the
    lowest smoothed loss and the suggestion (always below it). The y range leaves out the explosion at
    the end, so the descent stays readable."""
    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    ax.plot(result.lrs, result.raw_losses, color="tab:blue", alpha=0.25, lw=1, label="loss per step")
    ax.plot(result.lrs, result.losses, color="tab:blue", lw=2, label="smoothed loss")
    if result.suggestion is not None:
        lowest = min(range(len(result.losses)), key=result.losses.__getitem__)
        ax.plot(
            result.lrs[lowest],
            result.losses[lowest],
            "v",
            color="black",
            label=f"lowest smoothed loss, at lr {result.lrs[lowest]:.2g}",
        )
        ax.axvline(
            result.suggestion,
            color="tab:red",
            ls="--",
            lw=1.5,
            label=f"suggested lr {result.suggestion:.2g} ({result.rule})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (cross-entropy)")
    top = min(max(result.losses[: max(1, len(result.losses) // 3)]) * 1.3, max(result.raw_losses))
    ax.set_ylim(min(result.raw_losses) * 0.9, top)
    ax.set_title(title or "Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return fig
