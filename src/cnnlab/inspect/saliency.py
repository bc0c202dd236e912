"""Where a model looks: one map per image, at the input's height and width, of how much each pixel
matters to one class's score.

- ``gradient``: the absolute gradient of the class's logit with respect to each input pixel, the
  largest over channels (Simonyan, Vedaldi and Zisserman 2014, "Deep Inside Convolutional
  Networks").
- ``gradcam``: a convolution layer's maps, each weighted by the mean gradient of the class's logit
  over it, summed, kept where positive and upsampled bilinearly to the input (Selvaraju et al. 2017,
  "Grad-CAM"). Any convolution layer; the last by default. As in the paper, the maps are the
  rectified ones the network goes on with: the output of the activation that follows the
  convolution (after any batch norm or pooling), where there is one. A convolution's raw output is
  mostly negative, and its weighted sum then too, which the final ReLU turns into an empty map.
- ``occlusion``: how much the class's probability drops when a square patch of background covers
  each place, averaged over the patches that cover a pixel (Zeiler and Fergus 2014). A negative
  value means the patch made the class more likely.

Gradients come from ``torch.autograd.grad`` on the input, or on the activations a forward hook
recorded in this thread; the model's parameters never collect a ``.grad``. So one model can serve
concurrent requests, as the explorer's does, and every answer is that image's own.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from cnnlab.errors import ConfigError
from cnnlab.inspect.describe import DescribeError, Residual, describe
from cnnlab.inspect.hooks import LayerHooks
from cnnlab.inspect.kinds import KINDS

__all__ = ["METHODS", "Explainer", "explainer_for", "occlusion_baseline", "occlusion_patch"]

METHODS = ("gradcam", "gradient", "occlusion")


def occlusion_patch(height: int, width: int) -> tuple[int, int]:
    """(side, stride) of the occluding square: a seventh of the image (4 px of 28, 32 of 224), moved
    by half its side, so every pixel is covered by up to four patches."""
    side = max(2, round(min(height, width) / 7))
    return side, max(1, side // 2)


def occlusion_baseline(dataset) -> tuple[float, ...]:
    """What an occluding patch holds, normalised, per channel: the background where the dataset
    draws items on black (Fashion-MNIST, MNIST, the digits), else the mean colour (0 after
    normalisation), a neutral patch rather than a black hole in a photo (CIFAR-10, folders)."""
    if dataset.item_on_black:
        return dataset.background()
    return (0.0,) * dataset.input_shape[0]


def _flat(items, out: list) -> list:
    """(name, kind) of every layer ``describe`` lists, in order; a residual block's paths, then "Add"."""
    for item in items:
        if isinstance(item, Residual):
            _flat(item.main, out)
            _flat(item.shortcut, out)
            out.append((item.name, "Add"))
        else:
            out.append((item.name, item.kind))
    return out


def rectified(model) -> dict[str, str]:
    """Convolution name -> the name of the layer whose output is its rectified maps: the first
    activation after it, past the layers that keep its maps (batch norm, pooling, residual sums),
    when it is a module of its own used once; otherwise the convolution itself."""
    try:
        layers = _flat(describe(model), [])
    except DescribeError:  # a model the summary cannot read: the raw outputs, still correct
        return {}
    names = [name for name, _ in layers]
    found = {}
    for i, (name, kind) in enumerate(layers):
        if kind != "Conv2d":
            continue
        for later, later_kind in layers[i + 1 :]:
            known = KINDS.get(later_kind)
            if known is not None and known.activation and names.count(later) == 1:
                found[name] = later
            if known is None or not known.keeps_maps:
                break
    return found


class Explainer:
    """Saliency maps for one torch model; thread-safe. For Grad-CAM, each convolution's rectified
    maps (``rectified``) get a forward hook that, in a thread asking for that layer, keeps them (and
    hands the next layer a copy, so an in-place operation cannot rewrite what was kept)."""

    def __init__(self, model):
        import torch

        self.model = model
        modules = dict(model.named_modules())
        maps = rectified(model)
        # convolution name -> the name of the layer whose output Grad-CAM weighs for it
        self._maps_of = {
            name: maps.get(name, name)
            for name, module in modules.items()
            if isinstance(module, torch.nn.Conv2d)
        }
        self.convolutions = {name: modules[kept] for name, kept in self._maps_of.items()}
        self._hooks = LayerHooks(model, self._maps_of.values())

    def layer_name(self, layer) -> str:
        """The convolution ``layer`` names (as ``cnnlab summary`` lists it; None: the last one)."""
        names = list(self.convolutions)
        if not names:
            raise ConfigError("gradcam needs a convolution layer, and this model has none")
        if layer is None:
            return names[-1]
        if str(layer) not in self.convolutions:
            raise ConfigError(
                f"layer must be a convolution layer of the model, one of {', '.join(names)}. "
                f"Received: {layer!r}"
            )
        return str(layer)

    def maps(self, x, method: str = "gradcam", layer=None, target=None, baseline=0.0):
        """(maps float32 (N, H, W), targets int64 (N,)) for normalised inputs ``x`` (N, C, H, W).

        ``target``: None (each image's predicted class), one class for all, or one per image.
        ``baseline``: the normalised value an occluding patch holds, one for all channels or one per
        channel (``occlusion_baseline``).
        """
        import torch

        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}. Received: method={method!r}")
        if layer is not None and method != "gradcam":
            raise ConfigError(
                f"layer is for gradcam only; {method} maps the input. Received: layer={layer!r}"
            )
        with torch.inference_mode(False), torch.enable_grad():
            x = torch.as_tensor(x, dtype=torch.float32).detach().clone()  # (N, C, H, W), off inference mode
            if method == "gradient":
                return self._gradient(x, target)
            if method == "gradcam":
                return self._gradcam(x, self.layer_name(layer), target)
        return self._occlusion(x, target, baseline)

    def _targets(self, logits, target):
        import torch

        n, classes = logits.shape
        if target is None:
            return logits.detach().argmax(1)
        try:
            chosen = torch.as_tensor(np.broadcast_to(np.asarray(target), (n,)).copy())
        except (ValueError, TypeError):
            raise ConfigError(
                f"target must be one class, or one per image ({n}). Received: target={target!r}"
            ) from None
        if (
            chosen.dtype.is_floating_point
            or chosen.dtype == torch.bool
            or not ((chosen >= 0) & (chosen < classes)).all()
        ):
            raise ConfigError(
                f"target must be a class index in 0..{classes - 1} (or one per image). "
                f"Received: target={target!r}"
            )
        return chosen.long()

    def _gradient(self, x, target):
        import torch

        x.requires_grad_(True)
        logits = self.model(x)  # (N, classes)
        targets = self._targets(logits, target)
        (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)
        return grad.abs().amax(1).numpy(), targets.numpy()  # (N, H, W)

    def _gradcam(self, x, name: str, target):
        import torch
        import torch.nn.functional as F

        wanted, calls = self._maps_of[name], []

        def keep(layer, module, inputs, output):
            if layer != wanted:
                return None
            calls.append(output)
            return output.clone()

        with self._hooks.record(keep):
            logits = self.model(x)
        kept = calls[-1]  # (N, K, h, w)
        targets = self._targets(logits, target)
        (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), kept)
        cam = torch.relu((grad.mean((2, 3), keepdim=True) * kept).sum(1, keepdim=True))  # (N, 1, h, w)
        up = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
        return up[:, 0].detach().numpy(), targets.numpy()

    def _occlusion(self, x, target, baseline):
        import torch

        n, channels, height, width = x.shape
        fill = torch.as_tensor(
            np.broadcast_to(np.asarray(baseline, np.float32).reshape(-1), (channels,)).copy()
        )
        fill = fill.view(channels, 1, 1)
        side, stride = occlusion_patch(height, width)
        tops = sorted({*range(0, height - side + 1, stride), height - side})
        lefts = sorted({*range(0, width - side + 1, stride), width - side})
        with torch.inference_mode():
            logits = self.model(x)
            targets = self._targets(logits, target)
            base = logits.softmax(1).gather(1, targets[:, None])[:, 0]  # (N,)
            maps = np.zeros((n, height, width), np.float64)
            covered = np.zeros((height, width), np.float64)
            for t in tops:
                for left in lefts:
                    covered[t : t + side, left : left + side] += 1
            for i in range(n):
                patched = x[i : i + 1].repeat(len(tops) * len(lefts), 1, 1, 1)  # (P, C, H, W)
                for k, (t, left) in enumerate((t, left) for t in tops for left in lefts):
                    patched[k, :, t : t + side, left : left + side] = fill
                probs = self.model(patched).softmax(1)[:, targets[i]]  # (P,)
                drops = (base[i] - probs).double().numpy()
                for k, (t, left) in enumerate((t, left) for t in tops for left in lefts):
                    maps[i, t : t + side, left : left + side] += drops[k]
        return (maps / covered).astype(np.float32), targets.numpy()


_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def explainer_for(model) -> Explainer:
    """The one Explainer of ``model``, made (and its hooks added) on first use."""
    with _LOCK:
        if model not in _EXPLAINERS:
            _EXPLAINERS[model] = Explainer(model)
        return _EXPLAINERS[model]
