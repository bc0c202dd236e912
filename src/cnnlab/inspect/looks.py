"""``cnnlab show RUN saliency``: where a trained model looks for one test image, by each method of
``cnnlab.inspect.saliency``, drawn over the image.

Four panels: the image as the model sees it (in colour for a colour run), then gradient saliency,
Grad-CAM of the last convolution and occlusion, each for the predicted class, as a heat layer over
the image, more opaque where the map is larger. Gradient and Grad-CAM maps are never negative
(dark purple to yellow); occlusion's can be (red where covering a patch lowers the class's
probability, blue where it raises it), on a scale symmetric around 0. Each colour bar gives its
panel's units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.inspect.features import input_caption, test_image_name
from cnnlab.inspect.saliency import explainer_for, occlusion_baseline, occlusion_patch
from cnnlab.report.figures import new_figure, save_png
from cnnlab.runs.loader import LoadedRun

__all__ = ["plot_saliency"]

PANELS = [
    ("gradient", "|d logit / d pixel|, largest over channels"),
    ("gradcam", "Grad-CAM of layer {layer} (rectified maps)"),
    ("occlusion", "drop in probability, {side}x{side} patch of {patch}"),
]


def plot_saliency(
    trained: LoadedRun, image: np.ndarray, label: int, index: int, path: Path
) -> tuple[Path, dict]:
    """Draw the figure for uint8 ``image`` (C, H, W), test image ``index`` of class ``label``; (the
    PNG's path, {"maps": {method: map}, "class": the class explained, "layer": Grad-CAM's layer})."""
    import torch

    dataset = trained.dataset
    explainer = explainer_for(trained.model)
    x = dataset.normalize(image[None])
    layer = explainer.layer_name(None)
    maps = {}
    for method, _ in PANELS:
        found, targets = explainer.maps(x, method, baseline=occlusion_baseline(dataset))
        maps[method] = found[0]
    with torch.inference_mode():
        logits = trained.model(torch.from_numpy(x))[0].numpy()
    side = occlusion_patch(*image.shape[1:])[0]
    patch = "background" if dataset.item_on_black else "the mean colour"
    fig = new_figure((11.5, 3.3))
    axes = fig.subplots(1, 4)
    _backdrop(axes[0], image)
    name = test_image_name(index, label, trained.class_names)
    axes[0].set_title(input_caption(name, logits, trained.class_names), fontsize=9)
    for ax, (method, what) in zip(axes[1:], PANELS):
        values = maps[method]
        top = float(np.abs(values).max()) or 1.0
        style = (
            dict(cmap="RdBu_r", vmin=-top, vmax=top)
            if values.min() < 0
            else dict(cmap="inferno", vmin=0, vmax=top)
        )
        _backdrop(ax, image)
        shown = ax.imshow(values, alpha=np.clip(np.abs(values) / top, 0, 1) * 0.9, **style)
        ax.set_title(f"{method}\n{what.format(layer=layer, side=side, patch=patch)}", fontsize=8)
        fig.colorbar(shown, ax=ax, shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    predicted = trained.class_names[int(targets[0])]
    fig.suptitle(f"{trained.title}: where the model looks for {predicted!r}", fontsize=10)
    return save_png(fig, path), {"maps": maps, "class": predicted, "layer": layer}


def _backdrop(ax, image: np.ndarray) -> None:
    """The input under a heat layer, as the model sees it: colour, or gray light on black."""
    if image.shape[0] == 3:
        ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
    else:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
