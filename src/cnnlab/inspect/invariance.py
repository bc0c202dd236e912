"""Translation invariance, measured: the same test image shifted by a few pixels, and how much each
layer's output and the prediction change.

The notebook says pooling makes a network less sensitive to where exactly a feature is. Here
that is a number: for a shift (dx, dy) of the image (zero-filled, as the background is), the
relative change of a layer's output is ``||f(shifted) - f(original)|| / ||f(original)||``
over all its values (0: unchanged; 1: as large as the output itself). The input row is the
same measure on the pixels. The prediction is the class and its softmax probability; over a
sample of test images, the share whose prediction a shift leaves unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from cnnlab.inspect.features import capture, classify, show_input, test_image_name
from cnnlab.report.figures import new_figure, save_png

if TYPE_CHECKING:
    from cnnlab.runs.loader import LoadedRun

__all__ = ["shift", "Invariance", "measure", "format_table", "invariance_figure", "plot_invariance"]

MAX_SHIFT = 4  # pixels, in x and in y
SAMPLE = 200  # test images for the prediction-agreement figures
CHANGE_SAMPLE = 20  # of those, the images whose per-layer changes are averaged; plenty for a mean


def shift(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """uint8 images (..., H, W) moved right by ``dx`` and down by ``dy`` pixels, zero-filled (black)."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _relative_change(outputs: np.ndarray) -> np.ndarray:
    """(S,) change of each shift's output (S, ...) from the first (the unshifted one)."""
    flat = outputs.reshape(len(outputs), -1).astype(np.float64)
    return np.linalg.norm(flat - flat[0], axis=1) / max(np.linalg.norm(flat[0]), 1e-12)


@dataclasses.dataclass
class Invariance:
    shifts: list[tuple[int, int]]  # (dx, dy); the first is (0, 0)
    stages: list[str]  # "input pixels", then one per conv/pool layer
    change: np.ndarray  # (stages, shifts) for the chosen image
    predicted: np.ndarray  # (shifts,) class index for the chosen image
    probability: np.ndarray  # (shifts,) probability of the unshifted prediction
    sample_agreement: np.ndarray  # (shifts,) share of SAMPLE test images whose prediction is unchanged
    sample_change: np.ndarray  # (stages, shifts) mean relative change over the first CHANGE_SAMPLE of them
    sample_size: int
    class_names: tuple[str, ...]

    def at(self, dx: int, dy: int) -> int:
        return self.shifts.index((dx, dy))


def _stage_changes(
    trained: LoadedRun, images: np.ndarray, shifts
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(stage names, change (images, stages, shifts), logits (images, shifts, K)) in one forward pass."""
    moved = np.stack([shift(images, dx, dy) for dx, dy in shifts], axis=1)  # (N, S, C, H, W)
    n, s = moved.shape[:2]
    captures, logits = capture(trained, moved.reshape(n * s, *moved.shape[2:]))
    stages = ["input pixels"] + [
        f"layer {c.name}: {c.kind}{' + ' + c.detail.rsplit(' + ', 1)[1] if ' + ' in c.detail else ''}"
        for c in captures
    ]
    outputs = [moved / 255.0] + [c.output.reshape(n, s, -1) for c in captures]
    change = np.stack([[_relative_change(out[i]) for out in outputs] for i in range(n)])
    return stages, change, logits.reshape(n, s, -1)


def measure(trained: LoadedRun, image: np.ndarray, sample: np.ndarray) -> Invariance:
    """Every shift (dx, dy) in 0..MAX_SHIFT x 0..MAX_SHIFT for ``image`` (28, 28); for a sample
    (N, 28, 28), the prediction agreement at the shifts the table prints and the mean change
    at the x shifts (NaN elsewhere)."""
    shifts = [(dx, dy) for dy in range(MAX_SHIFT + 1) for dx in range(MAX_SHIFT + 1)]
    stages, change, logits = _stage_changes(trained, image[None], shifts)
    predicted, p = classify(logits[0])
    agree = np.full(len(shifts), np.nan)
    base = classify(capture(trained, sample, kinds=())[1])[0]
    for dx, dy in _rows():
        agree[shifts.index((dx, dy))] = np.mean(
            classify(capture(trained, shift(sample, dx, dy), kinds=())[1])[0] == base
        )
    sample_change = np.full_like(change[0], np.nan)
    along_x = [(d, 0) for d in range(MAX_SHIFT + 1)]
    sample_change[:, [shifts.index(d) for d in along_x]] = _stage_changes(
        trained, sample[:CHANGE_SAMPLE], along_x
    )[1].mean(axis=0)
    return Invariance(
        shifts,
        stages,
        change[0],
        predicted,
        p[:, predicted[0]],
        agree,
        sample_change,
        len(sample),
        trained.class_names,
    )


def _rows() -> list[tuple[int, int]]:
    """Shifts along x, along y, then diagonally: the ones the table prints."""
    r = range(1, MAX_SHIFT + 1)
    return [(0, 0)] + [(d, 0) for d in r] + [(0, d) for d in r] + [(d, d) for d in r]


def format_table(result: Invariance, index: int) -> str:
    names = ["input"] + [s.split(":")[0].split()[1] for s in result.stages[1:]]
    header = ["dx", "dy"] + [f"{n}" for n in names] + ["prediction", f"agree ({result.sample_size})"]
    lines = [
        f"relative change of each layer's output (0 = unchanged) for test image {index}, "
        f"shifted dx pixels right and dy down;",
        f"columns: input = the pixels; {'; '.join(result.stages[1:])}",
        f"agree: share of {result.sample_size} test images whose prediction the same shift leaves unchanged",
        "",
    ]
    rows = []
    for dx, dy in _rows():
        k = result.at(dx, dy)
        pred = f"{result.class_names[result.predicted[k]]} {100 * result.probability[k]:.0f}%"
        if result.predicted[k] != result.predicted[0]:
            pred = f"{result.class_names[result.predicted[k]]} (changed)"
        rows.append(
            [str(dx), str(dy)]
            + [f"{v:.2f}" for v in result.change[:, k]]
            + [pred, f"{100 * result.sample_agreement[k]:.0f}%"]
        )
    n = min(result.sample_size, CHANGE_SAMPLE)
    rows.append(["", ""] + [""] * len(names) + ["", ""])
    for d in range(1, MAX_SHIFT + 1):
        k = result.at(d, 0)
        rows.append(
            [str(d), "0"]
            + [f"{v:.2f}" for v in result.sample_change[:, k]]
            + [f"(mean of {n} images)", f"{100 * result.sample_agreement[k]:.0f}%"]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join(lines + [fmt(header)] + [fmt(r) for r in rows])


def plot_invariance(trained: LoadedRun, image: np.ndarray, label: int, index: int, result: Invariance, path):
    """``invariance_figure`` for test image ``index``, written to ``path``."""
    return save_png(
        invariance_figure(trained, image, test_image_name(index, label, trained.class_names), result), path
    )


def invariance_figure(trained: LoadedRun, image: np.ndarray, name: str, result: Invariance) -> Figure:
    """``image`` (named ``name``) shifted 0-4 pixels, and ``result`` (``measure``'s) drawn: how much
    each layer's output and the prediction change."""
    fig = new_figure((14, 8.4))
    top, bottom = fig.subfigures(2, 1, squeeze=False, height_ratios=[0.62, 1]).flat
    thumbs = top.subplots(1, MAX_SHIFT + 1)
    first = result.class_names[result.predicted[0]]
    for d, ax in enumerate(thumbs):
        k = result.at(d, 0)
        p = f"{100 * result.probability[k]:.0f}%"
        said = (
            f"{first} ({p})"
            if result.predicted[k] == result.predicted[0]
            else f"{result.class_names[result.predicted[k]]} ({first}: {p})"
        )
        show_input(ax, shift(image[None], d, 0)[0], f"shifted {d} px right\npredicted: {said}")
    top.suptitle(f"{name}, shifted to the right, and what the network predicts", fontsize=11)
    ax_lines, ax_heat, ax_pred = bottom.subplots(1, 3, width_ratios=[1.2, 0.8, 1])
    steps = range(MAX_SHIFT + 1)
    pooled, convs = iter(["#e6550d", "#a63603", "#fd8d3c"] * 4), iter(["#6baed6", "#2171b5", "#08306b"] * 4)
    for s, stage in enumerate(result.stages):
        color, style = (
            ("black", "o:") if s == 0 else (next(pooled), "o-") if "Pool" in stage else (next(convs), "s--")
        )
        ax_lines.plot(
            steps,
            [result.change[s, result.at(d, 0)] for d in steps],
            style,
            color=color,
            lw=2.4 if "Pool" in stage else 1.4,
            label=stage,
        )
    ax_lines.set_xlabel("shift to the right (pixels)")
    ax_lines.set_ylabel("relative change of the output")
    ax_lines.set_title("how much each layer's output changes (this image)", fontsize=10)
    ax_lines.grid(alpha=0.3)
    ax_lines.legend(fontsize=8, title="dotted: the pixels; dashed: conv; solid: pooled", title_fontsize=8)
    last = max(i for i, s in enumerate(result.stages) if "Pool" in s or i == 0)
    grid = np.array([[result.change[last, result.at(dx, dy)] for dx in steps] for dy in steps])
    heat = ax_heat.imshow(grid, cmap="magma_r", vmin=0, vmax=max(float(grid.max()), 1e-6))
    for (dy, dx), v in np.ndenumerate(grid):
        ax_heat.text(
            dx,
            dy,
            f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if v > 0.6 * grid.max() else "black",
        )
    ax_heat.set_xlabel("dx (pixels right)")
    ax_heat.set_ylabel("dy (pixels down)")
    ax_heat.set_title(f"change of {result.stages[last]}\nfor every shift", fontsize=10)
    bottom.colorbar(heat, ax=ax_heat, shrink=0.8, label="relative change")
    ax_pred.plot(
        steps,
        [100 * result.sample_agreement[result.at(d, 0)] for d in steps],
        "o-",
        color="tab:green",
        label=f"predictions unchanged, {result.sample_size} test images (x shift)",
    )
    ax_pred.plot(
        steps,
        [100 * result.sample_agreement[result.at(0, d)] for d in steps],
        "s--",
        color="tab:green",
        label="same, y shift",
    )
    ax_pred.plot(
        steps,
        [100 * result.probability[result.at(d, 0)] for d in steps],
        "o-",
        color="tab:purple",
        label="this image: probability of its prediction (x shift)",
    )
    ax_pred.set_ylim(0, 102)
    ax_pred.set_xlabel("shift (pixels)")
    ax_pred.set_ylabel("%")
    ax_pred.set_title("and the prediction", fontsize=10)
    ax_pred.grid(alpha=0.3)
    ax_pred.legend(fontsize=8, loc="lower left")
    for ax in (ax_lines, ax_pred):
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"{trained.title}: translation invariance, measured", fontsize=12)
    return fig
