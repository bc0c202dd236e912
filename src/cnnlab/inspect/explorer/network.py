"""Every layer's output for one image, as the model computes it in evaluation mode.

The layers are the records ``cnnlab summary`` prints (``describe`` walked by ``summarize``), in
the same order and with the same names and details, so the page needs no per-model code. Each
``Layer`` becomes a ``Step`` whose output a forward hook on its module records; a ``Residual``
becomes its main path, its shortcut and an ``Add`` step whose output is the sum of the two
paths' outputs. Which close-up a step gets is its kind's (``cnnlab.inspect.kinds``).

A network with its own ``forward()``, which ``describe`` cannot read, is walked
as one forward pass calls its layers (``cnnlab.inspect.traced``): each step then also keeps what
its module received, so a close-up shows the layer's real input even where ``forward()`` did work
between layers (a functional ``relu``, a ``view``) that is no step of its own. The hooks
(``cnnlab.inspect.hooks``) hand each call to the thread that asked, so concurrent requests share
one model without a lock, and what they record is the model's own forward pass, not a re-enactment.

Outputs travel to the page as 8-bit codes with a float32 offset and scale per map (``quantize``):
``value = offset + code * scale``, which is within ``scale / 2`` of the float32 value.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.inspect.describe import DescribeError, Residual, describe
from cnnlab.inspect.hooks import LayerHooks
from cnnlab.inspect.kinds import KINDS
from cnnlab.inspect.summary import summarize
from cnnlab.inspect.traced import layers_in_order, summarize_traced

if TYPE_CHECKING:
    import torch

    from cnnlab.data.dataset import Dataset

__all__ = [
    "Step",
    "Forward",
    "Network",
    "quantize",
    "quantized_json",
    "dequantize",
    "find_mistake",
    "step_of",
]

RECEIVED = ("conv", "pool")  # close-ups that need what their layer received, kept by the hooks
INPUT = -1  # the source index that means the network's input image


@dataclasses.dataclass(frozen=True)
class Step:
    """One column of the page: a layer, or the sum at the end of a residual block."""

    index: int
    name: str  # the module's path, as `cnnlab summary` prints it
    kind: str  # torch's class name, or "Add"
    detail: str  # as `cnnlab summary` prints it: "1->32, 3x3"
    shape: tuple[int, ...]  # one image's output: (C, H, W) or (F,)
    depth: int  # nesting inside residual blocks
    sources: tuple[int, ...]  # the steps whose outputs feed this one; INPUT is the image
    options: dict  # what decides the output shape (describe's Layer.options)

    @property
    def closeup(self) -> str | None:
        """The page's view of this step up close ("conv", "pool", "activation", ...), if it has one."""
        kind = KINDS.get(self.kind)
        return kind.closeup if kind is not None else None

    def as_json(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "detail": self.detail,
            "shape": list(self.shape),
            "depth": self.depth,
            "sources": list(self.sources),
            "closeup": self.closeup,
        }


@dataclasses.dataclass
class Forward:
    """One image through the network."""

    image: np.ndarray  # uint8 (H, W) gray or (C, H, W) colour, as the page sent it
    x: np.ndarray  # float32 (C, H, W), the normalised model input
    outputs: list[np.ndarray]  # float32, one per step, shaped as step.shape
    inputs: dict[int, np.ndarray]  # float32: what each close-up step (each step, if traced) received
    logits: np.ndarray  # float32 (10,)

    @property
    def probabilities(self) -> np.ndarray:
        from scipy.special import softmax

        return softmax(self.logits.astype(np.float64))


def _flatten(items, source: int, depth: int, out: list) -> int:
    """Append (item, sources, depth) for ``items`` fed by step ``source``; the last step's index."""
    for item in items:
        if isinstance(item, Residual):
            main = _flatten(item.main, source, depth + 1, out)
            short = _flatten(item.shortcut, source, depth + 1, out)
            out.append((item, (main, short), depth))
        else:
            out.append((item, (source,), depth))
        source = len(out) - 1
    return source


class Network:
    """A torch model in evaluation mode, with a hook on every layer ``describe`` lists."""

    def __init__(self, model: torch.nn.Module, dataset: Dataset) -> None:
        self.model = model.eval()
        self.dataset = dataset  # the run's: its input shape, classes and normalisation
        self.input_shape = tuple(dataset.input_shape)
        walked: list = []
        try:
            _flatten(describe(model), INPUT, 0, walked)
            self.traced = False
            summary = summarize(model, self.input_shape)
        except DescribeError:
            if not hasattr(model, "register_forward_hook"):
                raise
            # Its own forward(): the leaf layers as one pass calls them, each fed by the one before.
            self.traced = True
            layers = layers_in_order(model, self.input_shape)
            walked = [(layer, (i - 1 if i else INPUT,), 0) for i, layer in enumerate(layers)]
            summary = summarize_traced(model, self.input_shape)
        if summary.failed is not None:
            raise DescribeError(f"input {self.input_shape} does not fit the model: {summary.reason}")
        rows = summary.rows[1:]  # rows[0] is the input
        self.steps = [
            Step(i, row.name, row.kind, row.detail, row.shape, depth, sources, getattr(item, "options", {}))
            for i, (row, (item, sources, depth)) in enumerate(zip(rows, walked))
        ]
        self.modules = dict(model.named_modules())
        self._steps_of: dict[str, list[Step]] = {}  # a module's steps (two, if describe lists it twice)
        for step in self.steps:
            if step.kind == "Add":
                continue
            if step.name not in self.modules:
                raise DescribeError(f"layer {step.name!r} that describe() lists is not a module of the model")
            self._steps_of.setdefault(step.name, []).append(step)
        self.hooks = LayerHooks(model, self._steps_of)
        self._check()

    def run(self, image: np.ndarray, inputs: bool = True) -> Forward:
        """uint8 (H, W) or (C, H, W) -> every step's output for it; with ``inputs``, also what each
        convolution and pooling step received (for close-ups)."""
        import torch

        x = self.dataset.normalize(image.reshape(1, *self.input_shape))  # (1, C, H, W), as training did
        found: dict[int, tuple] = {}
        with self.hooks.record(self._keeper(found, inputs)), torch.inference_mode():
            logits = self.model(torch.from_numpy(x))[0].float().numpy()
        outputs: list[np.ndarray] = []
        for step in self.steps:
            if step.kind == "Add":  # main + shortcut; an empty shortcut passes its input on
                a, b = (outputs[s] if s != INPUT else x[0] for s in step.sources)
                outputs.append(a + b)
            else:
                outputs.append(found[step.index][1].float().numpy())
        received = {i: v[0].float().numpy() for i, v in found.items() if v[0] is not None}
        return Forward(image, x[0], outputs, received, logits)

    def _keeper(self, found: dict, inputs: bool):
        """A listener keeping (what it received or None, its output) of each step's first call."""

        def keep(name, module, received, output):
            for step in self._steps_of[name]:
                if step.index in found:  # a module called twice: keep the first
                    continue
                # Copies: a later in-place ReLU would otherwise change what this layer gave.
                # A traced network's steps always keep theirs: its forward() may work between layers.
                wanted = self.traced or (inputs and step.closeup in RECEIVED)
                found[step.index] = (received[0][0].clone() if wanted else None, output[0].clone())

        return keep

    def responses(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Normalised images (N, C, H, W) -> {step: (N, channels)}: each map's peak, or each
        neuron's value, per image, by the same hooks (residual sums and Flatten have none)."""
        import torch

        peaks: dict[int, np.ndarray] = {}

        def keep(name, module, received, output):
            for step in self._steps_of[name]:
                if step.index not in peaks and step.kind != "Flatten":
                    peak = output.amax(dim=(2, 3)) if output.ndim == 4 else output.reshape(len(output), -1)
                    peaks[step.index] = peak.float().numpy().copy()  # (N, C)

        with self.hooks.record(keep), torch.inference_mode():
            self.model(torch.from_numpy(x))
        return peaks

    def _check(self) -> None:
        """The last step's output must be the model's output, or the steps miss part of the forward."""
        rng = np.random.default_rng(0)
        forward = self.run(rng.integers(0, 256, size=self.input_shape, dtype=np.uint8))
        if not np.allclose(forward.outputs[-1].reshape(-1), forward.logits, rtol=1e-5, atol=1e-5):
            raise DescribeError(
                f"the layers describe() lists for {type(self.model).__name__} do not give its output; "
                "its forward does more than its summary_layers(prefix) says"
            )

    def module(self, step: Step):
        return self.modules[step.name]


def step_of(network: Network, index: int, closeup: str, what: str) -> Step:
    """Step ``index``, which must have the close-up ``closeup``; a ValueError says what is wrong."""
    if not 0 <= index < len(network.steps):
        raise ValueError(f"layer must be in 0..{len(network.steps) - 1}. Received: {index}")
    step = network.steps[index]
    if step.closeup != closeup:
        raise ValueError(f"layer {index} is a {step.kind}, not {what}. Received: layer={index}")
    return step


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _quantized(values: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(offsets (C,), the largest value, scales (C,), codes (C, H*W) uint8) of a step's output."""
    maps = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(1, -1)  # (C, H*W)
    maps = maps.astype(np.float32, copy=False)
    low, high = maps.min(axis=1), maps.max(axis=1)  # (C,)
    scale = (high - low) / np.float32(255)
    inverse = np.float32(255) / np.where(high > low, high - low, np.float32(1))
    # (v - low) * inverse is in [0, 255] up to float32 rounding, so + 0.5 and truncation round it
    codes = ((maps - low[:, None]) * inverse[:, None] + np.float32(0.5)).astype(np.uint8)
    return low, float(high.max()), scale, codes


def quantize(values: np.ndarray) -> dict:
    """A step's output as one 8-bit code per value with a float32 offset and scale per map.

    (C, H, W) or (C, L) has C maps; (F,) is one map. ``value ~ offset + code * scale``, off by
    at most ``scale / 2`` (plus float32 rounding). Codes, offsets and scales are base64 of
    little-endian uint8 / float32 arrays, maps one after the other, each row by row.
    """
    low, high, scale, codes = _quantized(values)
    return {
        "min": float(low.min()),
        "max": high,
        "offsets": _b64(low.astype("<f4")),
        "scales": _b64(scale.astype("<f4")),
        "data": _b64(codes),
    }


def quantized_json(outputs: list[np.ndarray]) -> bytes:
    """``[{"index", "min", "max", "offsets", "scales", "data"}, ...]`` for every step, as JSON bytes.

    The same fields as ``quantize``, written directly: base64 needs no escaping, and a JSON encoder
    scanning 300 KB of it for characters to escape was a fifth of a vgg-mini request.
    """
    parts = []
    for index, values in enumerate(outputs):
        low, high, scale, codes = _quantized(values)
        parts.append(
            b'{"index":%d,"min":%s,"max":%s,"offsets":"%s","scales":"%s","data":"%s"}'
            % (
                index,
                json.dumps(float(low.min()), allow_nan=False).encode(),
                json.dumps(high, allow_nan=False).encode(),
                base64.b64encode(low.astype("<f4").tobytes()),
                base64.b64encode(scale.astype("<f4").tobytes()),
                base64.b64encode(codes.tobytes()),
            )
        )
    return b"[" + b",".join(parts) + b"]"


def dequantize(encoded: dict, shape) -> np.ndarray:
    """The page's arithmetic, for tests: float32 values from ``quantize``'s output."""
    offsets = np.frombuffer(base64.b64decode(encoded["offsets"]), "<f4")
    scales = np.frombuffer(base64.b64decode(encoded["scales"]), "<f4")
    codes = np.frombuffer(base64.b64decode(encoded["data"]), np.uint8).reshape(len(offsets), -1)
    return (offsets[:, None] + codes * scales[:, None]).reshape(shape)


def find_mistake(network: Network, images: np.ndarray, labels: np.ndarray, seed: int, batch: int = 64):
    """(index, predicted class) of a test image the network gets wrong, drawn with ``seed``;
    None if it gets all of them right. Images are tried in a seeded random order, a batch at a time,
    so the first answer costs one batch, not the whole test set."""
    import torch

    order = np.random.default_rng(seed).permutation(len(labels))
    shape = network.input_shape
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        x = network.dataset.normalize(images[chosen].reshape(len(chosen), *shape))
        with torch.inference_mode():
            predicted = network.model(torch.from_numpy(x)).argmax(1).numpy()
        wrong = np.flatnonzero(predicted != labels[chosen])
        if len(wrong):
            return int(chosen[wrong[0]]), int(predicted[wrong[0]])
    return None
