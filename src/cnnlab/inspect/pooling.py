"""Max pooling on a real feature map: the map with its windows, the maximum picked in each, and
the smaller map that results, with a close-up in numbers.

The feature map is what the model's first max-pooling layer receives for the chosen test
image (after the convolution and its ReLU); the channel shown is the one whose peak stands out
most above its median, a detector that fires on part of the item rather than on the
background. A model without max pooling gets a 2x2 one applied to its first convolution's
output, as an illustration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlab.inspect.features import capture, input_caption, show_input, test_image_name
from cnnlab.report.figures import new_figure, save_png

if TYPE_CHECKING:
    from pathlib import Path

    from cnnlab.runs.loader import LoadedRun

__all__ = ["pooling_figure", "plot_pooling"]

ZOOM = 3  # windows per side in the close-up


def _max_pool(maps: np.ndarray, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pooled (C, H', W'), flat argmax into H*W per output) by torch's own max_pool2d."""
    import torch
    import torch.nn.functional as F

    out, idx = F.max_pool2d(torch.from_numpy(maps)[None], return_indices=True, **options)
    return out[0].numpy(), idx[0].numpy()


def _source(trained: LoadedRun, image: np.ndarray):
    """(feature maps (C, H, W), pool options, layer name, logits, its description)."""
    captures, logits = capture(trained, image[None], kinds=("Conv2d", "MaxPool2d"))
    modules = dict(trained.model.named_modules())
    for cap in captures:
        if cap.kind == "MaxPool2d":
            m = modules[cap.name]
            options = dict(
                kernel_size=m.kernel_size,
                stride=m.stride,
                padding=m.padding,
                dilation=m.dilation,
                ceil_mode=m.ceil_mode,
            )
            return cap.input[0], options, f"layer {cap.name}: MaxPool2d {cap.detail}", logits
    conv = captures[0]
    return (
        np.maximum(conv.output[0], 0),
        dict(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False),
        f"a 2x2 max pool on layer {conv.name}'s output (the model itself has none)",
        logits,
    )


def _windows(ax, pooled_shape, options, color="white", lw=0.6) -> None:
    """Outline every pooling window on a map drawn with imshow (cells centred on integers)."""
    k, s, p = (_pair(options[n]) for n in ("kernel_size", "stride", "padding"))
    for i in range(pooled_shape[0]):
        for j in range(pooled_shape[1]):
            ax.add_patch(
                Rectangle(
                    (j * s[1] - p[1] - 0.5, i * s[0] - p[0] - 0.5),
                    k[1],
                    k[0],
                    fill=False,
                    edgecolor=color,
                    lw=lw,
                )
            )


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _numbers(ax, values, highlight=None, fontsize=8) -> None:
    top = values.max() or 1.0
    for (r, c), v in np.ndenumerate(values):
        bold = highlight is not None and highlight[r, c]
        ax.text(
            c,
            r,
            f"{v:.1f}",
            ha="center",
            va="center",
            fontsize=fontsize,
            color="black" if v > 0.55 * top else "white",
            fontweight="bold" if bold else "normal",
        )


def plot_pooling(
    trained: LoadedRun, image: np.ndarray, label: int, index: int, path: Path
) -> tuple[Path, dict]:
    """Write ``pooling_figure`` for test image ``index``; return (its path, the numbers it shows)."""
    fig, facts = pooling_figure(trained, image, test_image_name(index, label, trained.class_names))
    return save_png(fig, path), facts


def pooling_figure(trained: LoadedRun, image: np.ndarray, name: str) -> tuple[Figure, dict]:
    """(the figure for ``image``, named ``name`` under it; the numbers it shows: the channel, the
    map's shape, the pooled shape and the share of values kept)."""
    maps, options, what, logits = _source(trained, image)
    pooled, argmax = _max_pool(maps, options)
    flat = maps.reshape(len(maps), -1)
    channel = int(np.argmax(flat.max(axis=1) - np.median(flat, axis=1)))  # a detector that fires on the item
    fmap, out, arg = maps[channel], pooled[channel], argmax[channel]
    rows, cols = np.unravel_index(arg, fmap.shape)  # (H', W') each: where each maximum came from
    vmax = float(fmap.max()) or 1.0
    style = dict(cmap="inferno", vmin=0.0, vmax=vmax)

    fig = new_figure((13, 8.2))
    top, bottom = fig.subfigures(2, 1, squeeze=False, height_ratios=[1, 0.95]).flat
    ax_img, ax_map, ax_out = top.subplots(1, 3, width_ratios=[0.8, 1, 1])
    show_input(ax_img, image, input_caption(name, logits[0], trained.class_names))
    shown = ax_map.imshow(fmap, **style)
    _windows(ax_map, out.shape, options, color="#7fcdbb", lw=0.5)
    lowest = -_max_pool(-maps[channel : channel + 1], options)[0][0]
    strong = out - lowest > 0.05 * vmax  # skip flat windows (the background), where all cells tie
    ax_map.plot(cols[strong], rows[strong], "o", ms=3, mfc="none", mec="#41b6c4", mew=0.9)
    ax_map.set_title(
        f"feature map: channel {channel}, {fmap.shape[0]}x{fmap.shape[1]}\n"
        f"boxes: pooling windows; circles: the maximum of each",
        fontsize=10,
    )
    ax_out.imshow(out, **style)
    ax_out.set_title(
        f"after max pooling: {out.shape[0]}x{out.shape[1]}\neach cell keeps its window's maximum", fontsize=10
    )
    top.colorbar(shown, ax=[ax_map, ax_out], shrink=0.8, label="activation")

    # Close-up: the ZOOM x ZOOM windows around the strongest output.
    k, s = _pair(options["kernel_size"]), _pair(options["stride"])
    i0 = int(
        np.clip(np.unravel_index(np.argmax(out), out.shape)[0] - ZOOM // 2, 0, max(out.shape[0] - ZOOM, 0))
    )
    j0 = int(
        np.clip(np.unravel_index(np.argmax(out), out.shape)[1] - ZOOM // 2, 0, max(out.shape[1] - ZOOM, 0))
    )
    r0, c0 = (
        max(i0 * s[0] - _pair(options["padding"])[0], 0),
        max(j0 * s[1] - _pair(options["padding"])[1], 0),
    )
    r1, c1 = (
        min(r0 + (ZOOM - 1) * s[0] + k[0], fmap.shape[0]),
        min(c0 + (ZOOM - 1) * s[1] + k[1], fmap.shape[1]),
    )
    crop, crop_out = fmap[r0:r1, c0:c1], out[i0 : i0 + ZOOM, j0 : j0 + ZOOM]
    winners = np.zeros_like(crop, bool)
    for r, c in zip(
        rows[i0 : i0 + ZOOM, j0 : j0 + ZOOM].ravel(), cols[i0 : i0 + ZOOM, j0 : j0 + ZOOM].ravel()
    ):
        if r0 <= r < r1 and c0 <= c < c1:
            winners[r - r0, c - c0] = True
    for ax in (ax_map, ax_out):
        ax.set_xticks([])
        ax.set_yticks([])
    ax_map.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, edgecolor="#41b6c4", lw=2))
    ax_out.add_patch(
        Rectangle(
            (j0 - 0.5, i0 - 0.5), crop_out.shape[1], crop_out.shape[0], fill=False, edgecolor="#41b6c4", lw=2
        )
    )
    ax_zoom, ax_arrow, ax_zout = bottom.subplots(1, 3, width_ratios=[1, 0.3, 0.5])
    ax_zoom.imshow(crop, **style)
    _numbers(ax_zoom, crop, winners)
    for r, c in zip(*np.nonzero(winners)):
        ax_zoom.add_patch(Rectangle((c - 0.4, r - 0.4), 0.8, 0.8, fill=False, edgecolor="#41b6c4", lw=2.5))
    _windows(ax_zoom, crop_out.shape, {**options, "padding": 0}, color="white", lw=1.5)
    ax_zoom.set_title(
        f"close-up (rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1}): each {k[0]}x{k[1]} window's maximum is boxed",
        fontsize=10,
    )
    ax_arrow.axis("off")
    ax_arrow.annotate(
        "", xy=(0.9, 0.5), xytext=(0.1, 0.5), arrowprops=dict(arrowstyle="-|>", lw=2, color="gray")
    )
    ax_arrow.text(0.5, 0.6, "max", ha="center", fontsize=11, color="gray")
    ax_zout.imshow(crop_out, **style)
    _numbers(ax_zout, crop_out, fontsize=10)
    ax_zout.set_title("pooled values", fontsize=10)
    for ax in (ax_zoom, ax_zout):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{trained.title}: max pooling on a real feature map ({what})", fontsize=11)
    kept = float(out.size) / fmap.size
    return fig, dict(channel=channel, map_shape=fmap.shape, pooled_shape=out.shape, kept=kept)
