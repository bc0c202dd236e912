"""Pictures of a trained network: its first-layer filters, the feature maps of every conv and pool
layer for one test image, and max pooling on a real feature map.

Colours: a map that can be negative (a convolution's output, before its ReLU; a filter's
weights) is drawn red for positive and blue for negative around a white zero; a map that cannot
(after ReLU or pooling) runs from black (0) to yellow. One scale per figure, with its colour
bar, so weak channels look weak.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from cnnlab.inspect.describe import Layer
from cnnlab.inspect.hooks import recording
from cnnlab.inspect.kinds import KINDS
from cnnlab.inspect.summary import layer_detail
from cnnlab.inspect.traced import layers_in_order
from cnnlab.report import gallery
from cnnlab.report.figures import new_figure, save_png

if TYPE_CHECKING:
    from cnnlab.runs.loader import LoadedRun

__all__ = [
    "Capture",
    "capture",
    "classify",
    "filters_of",
    "plot_filters",
    "features_figures",
    "plot_features",
    "input_caption",
    "show_input",
    "test_image_name",
]

FEATURE_KINDS = tuple(name for name, kind in KINDS.items() if kind.features)  # the conv and pool layers


@dataclasses.dataclass
class Capture:
    name: str  # the module's path, as in state_dict keys
    kind: str
    detail: str  # e.g. "1->32, 3x3 + ReLU"
    input: np.ndarray  # (N, C, H, W)
    output: np.ndarray  # (N, C', H', W'); after the activation that follows, if asked


def capture(
    trained: LoadedRun, images: np.ndarray, kinds=FEATURE_KINDS, through_activation: bool = True
) -> tuple[list[Capture], np.ndarray]:
    """(the input and output of every layer of ``kinds``, in order; the logits) for uint8 images (N, 28, 28).

    With ``through_activation``, a convolution directly followed by an activation (ReLU) reports
    the activation's output: the feature maps the next layer sees.
    """
    import torch

    layers = layers_in_order(trained.model, trained.input_shape)
    wanted = {layer.name: layer for layer in layers if layer.kind in kinds}
    paired = _paired(layers, wanted) if through_activation else {}
    found: dict[str, Capture] = {}
    activated: set[str] = set()

    def record(name, module, inputs, output):
        layer = wanted.get(name)
        if layer is not None and name not in found:  # a module called twice reports its first call
            suffix = f" + {paired[name].kind}" if name in paired else ""
            maps = (inputs[0].numpy().copy(), output.numpy().copy())
            found[name] = Capture(name, layer.kind, layer_detail(layer) + suffix, *maps)
        for conv, after in paired.items():
            if after.name == name and conv in found and conv not in activated:
                found[conv].output = output.numpy().copy()
                activated.add(conv)

    names = [*wanted, *(after.name for after in paired.values())]
    with recording(trained.model, names, record), torch.inference_mode():
        logits = trained.model(trained.prepare(images)).numpy()
    return [found[layer.name] for layer in layers if layer.name in found], logits


def _paired(layers: list[Layer], wanted: dict) -> dict[str, Layer]:
    """Convolution name -> the activation right after it, for each captured convolution that has one."""
    pairs: dict[str, Layer] = {}
    for layer, after in zip(layers, layers[1:]):
        activation = after.kind in KINDS and KINDS[after.kind].activation
        if layer.name in wanted and layer.kind == "Conv2d" and activation:
            pairs.setdefault(layer.name, after)
    return pairs


def classify(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class (N,), softmax probabilities (N, 10)) from logits (N, 10)."""
    from scipy.special import softmax

    p = softmax(logits, axis=1)
    return p.argmax(axis=1), p


def _scale(maps: np.ndarray) -> dict:
    """imshow arguments: diverging around 0 if anything is negative, else black to yellow."""
    top = float(np.abs(maps).max()) or 1.0
    if maps.min() < 0:
        return dict(cmap="RdBu_r", vmin=-top, vmax=top)
    return dict(cmap="inferno", vmin=0.0, vmax=top)


def _grid(n: int, max_cols: int = 8) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def filters_of(trained: LoadedRun) -> Figure:
    """The first convolution's filters as a grid, each with its weights written in: the figure
    ``cnnlab report`` embeds (``cnnlab.report.gallery.filters_figure``), headed by the run's name."""
    found = trained.first_conv()
    if found is None:
        raise ValueError(f"model {trained.config.model!r} has no Conv2d layer")
    name, weights = found
    return gallery.filters_figure(weights, title=f"{trained.title}, layer {name}")


def plot_filters(trained: LoadedRun, path: Path) -> Path:
    """``filters_of``, written to ``path`` (``cnnlab show filters``)."""
    return save_png(filters_of(trained), path)


def show_input(ax, image: np.ndarray, caption: str) -> None:
    """A uint8 image (C, H, W) as the model's input: colour in colour; gray as dark ink on white
    paper (the inverted gray scale), which reads better than light on black."""
    if image.ndim == 3 and image.shape[0] == 3:
        ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
    else:
        ax.imshow(image.reshape(image.shape[-2:]), cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(caption, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def test_image_name(index: int, label: int, class_names) -> str:
    """How a picture names test image ``index``: "test image 9: Sneaker"."""
    return f"test image {index}: {class_names[label]}"


def input_caption(name: str, logits: np.ndarray, class_names) -> str:
    """``name`` (a test image, or "your image"), and what the network predicts for it."""
    predicted, p = classify(logits[None] if logits.ndim == 1 else logits)
    return f"{name}\npredicted: {class_names[predicted[0]]} ({100 * p[0, predicted[0]]:.0f}%)"


def _mosaic(ax, maps: np.ndarray, rows: int, cols: int, style: dict):
    """All channels as one image, tiles numbered in the gap above each (far faster than one axes per map)."""
    c, h, w = maps.shape
    above, side = max(2, round(0.3 * h)), max(1, round(0.08 * w))
    tile_h, tile_w = h + above, w + side
    canvas = np.full((rows * tile_h, cols * tile_w - side), np.nan)
    for k in range(c):
        r, q = divmod(k, cols)
        canvas[r * tile_h + above : (r + 1) * tile_h, q * tile_w : q * tile_w + w] = maps[k]
    cmap = matplotlib.colormaps[style["cmap"]].with_extremes(bad="white")
    shown = ax.imshow(canvas, **{**style, "cmap": cmap}, interpolation="nearest")
    for k in range(c):
        r, q = divmod(k, cols)
        ax.text(q * tile_w - 0.5, r * tile_h + above - 0.7, str(k), fontsize=7, va="bottom", ha="left")
    ax.axis("off")
    return shown


def features_figures(trained: LoadedRun, image: np.ndarray, name: str) -> list[tuple[Capture, Figure]]:
    """One figure per conv or pool layer: the input image (``name`` under it) beside every channel's
    feature map; with the layer each shows."""
    captures, logits = capture(trained, image[None])
    caption = input_caption(name, logits[0], trained.class_names)
    return [(cap, _features_figure(trained, image, caption, cap)) for cap in captures]


def _features_figure(trained: LoadedRun, image: np.ndarray, caption: str, cap: Capture) -> Figure:
    maps = cap.output[0]  # (C, H, W)
    rows, cols = _grid(len(maps))
    fig = new_figure((2.6 + 1.05 * cols, max(2.9, 1.1 * rows + 1.0)))
    left, right = fig.subfigures(1, 2, squeeze=False, width_ratios=[2.4, 1.05 * cols]).flat
    show_input(left.subplots(), image, caption)
    ax = right.subplots()
    style = _scale(maps)
    shown = _mosaic(ax, maps, rows, cols, style)
    what = (
        "convolution output, no activation after it (red +, blue -)"
        if maps.min() < 0
        else "pooled feature maps (each value: the max of a window)"
        if cap.kind == "MaxPool2d"
        else "pooled feature maps"
        if "Pool" in cap.kind
        else f"feature maps after the {cap.detail.rsplit(' + ', 1)[-1]}"
    )
    right.colorbar(shown, ax=ax, shrink=0.7, label="activation")
    right.suptitle(
        f"layer {cap.name}: {cap.kind} {cap.detail} -> {len(maps)} maps of "
        f"{maps.shape[1]}x{maps.shape[2]}\n{what}",
        fontsize=10,
    )
    fig.suptitle(trained.title, fontsize=9, x=0.01, ha="left", color="dimgray")
    return fig


def plot_features(
    trained: LoadedRun, image: np.ndarray, label: int, index: int, directory: Path
) -> list[Path]:
    """``features_figures`` for test image ``index``, one PNG per layer in ``directory``."""
    figures = features_figures(trained, image, test_image_name(index, label, trained.class_names))
    return [
        save_png(fig, directory / f"features-{index}-{number:02d}-layer{cap.name}-{cap.kind}.png")
        for number, (cap, fig) in enumerate(figures)
    ]
