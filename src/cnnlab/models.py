"""The model registry: each architecture defined once, built for either engine and for any dataset.

An architecture is a function of the ``nn`` namespace it builds with, the input shape (C, H, W) and
the class count, as torchvision's builders take ``num_classes``. ``torch_nn()`` is ``torch.nn``;
``scratch_nn(rng)`` is ``cnnlab.scratch.nn`` with the generator and dtype of the initial weights
bound. The scratch layers take torch's names, arguments and state_dict keys, so one definition gives
both engines the same layers, and a state_dict moves between them unchanged.

``seed`` is the notebook's ConvNet exactly, ReLU on the logits included, so its results reproduce.
``convnet`` drops that ReLU, which zeroes negative logits and stalls the notebook near 80%. Your
own network comes from ``cnnlab.user_models``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Sequence

from cnnlab import shapes
from cnnlab.errors import ConfigError, given, option, spelled

BACKENDS = ("torch", "numpy")
Shape = tuple[int, int, int]  # (C, H, W)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    # (nn, input_shape, num_classes, dropout=, [widths=]) -> a model built with that nn namespace
    build: Callable
    base_widths: tuple[int, ...] | None = None  # the channel widths --width multiplies; None: fixed
    numpy: bool = True  # whether cnnlab.scratch builds it (every built-in model)
    # The convolutions and pools that shrink the image before the head: they set the smallest image
    # the model takes. None: not known (your own network).
    downsampling: tuple[tuple[str, int, int], ...] | None = ()


def scaled_widths(base: tuple[int, ...], width: float) -> tuple[int, ...]:
    """``base`` times ``width``, each rounded and at least 1: --width 2 makes vgg-mini 64-128-256."""
    return tuple(max(1, round(w * width)) for w in base)


# The nn namespaces


def torch_nn() -> types.SimpleNamespace:
    """``torch.nn``, with the residual block the scratch namespace also has."""
    from torch import nn

    return types.SimpleNamespace(
        **{k: getattr(nn, k) for k in dir(nn) if not k.startswith("_")}, ResidualBlock=_torch_residual_block()
    )


@functools.lru_cache(maxsize=1)
def _torch_residual_block() -> type:
    from torch import nn

    class ResidualBlock(nn.Module):
        """``relu(body(x) + shortcut(x))`` (He et al. 2016); keys "body.*" and "shortcut.*" as
        cnnlab.scratch.nn.ResidualBlock's; ``shortcut`` None is the identity."""

        def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, relu: bool = True):
            super().__init__()
            self.body = body
            self.shortcut = shortcut if shortcut is not None else nn.Sequential()
            self.relu = nn.ReLU(inplace=True) if relu else nn.Sequential()

        def forward(self, x):
            return self.relu(self.body(x) + self.shortcut(x))

    return ResidualBlock


def scratch_nn(rng, dtype=None) -> types.SimpleNamespace:
    """``cnnlab.scratch.nn`` with ``rng`` (the initial weights' and dropout's generator) and ``dtype``
    bound into the layers that take them, so they are called with torch's arguments alone."""
    import numpy as np

    from cnnlab.scratch import nn

    dtype = np.float32 if dtype is None else dtype
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    bound = {
        "Conv2d": functools.partial(nn.Conv2d, rng=rng, dtype=dtype),
        "Linear": functools.partial(nn.Linear, rng=rng, dtype=dtype),
        "BatchNorm1d": functools.partial(nn.BatchNorm1d, dtype=dtype),
        "BatchNorm2d": functools.partial(nn.BatchNorm2d, dtype=dtype),
        "Dropout": functools.partial(nn.Dropout, rng=rng),
    }
    return types.SimpleNamespace(**{**{name: getattr(nn, name) for name in nn.__all__}, **bound})


# Shapes


def _after(hw: tuple[int, int], *steps: tuple[str, int, int]) -> tuple[int, int]:
    """(H, W) after convolutions ("conv", kernel, padding) and max-pools ("pool", kernel, 0)."""
    for kind, kernel, padding in steps:
        hw = (
            shapes.conv2d_output_shape(hw, kernel, padding=padding)
            if kind == "conv"
            else shapes.pool2d_output_shape(hw, kernel)
        )
    return hw


def smallest_fit(layers: Sequence[tuple[str, int, int]]) -> int:
    for side in range(1, 1024):
        try:
            _after((side, side), *layers)
            return side
        except ValueError:
            continue
    return 1024


def spatial_after(name: str, input_shape: Shape, layers: Sequence[tuple[str, int, int]]) -> tuple[int, int]:
    """The feature map's (H, W) after ``layers``, or a ConfigError that says how large an image the
    model needs."""
    try:
        return _after(tuple(input_shape[1:]), *layers)  # type: ignore[arg-type]
    except ValueError:
        side = smallest_fit(layers)
        h, w = input_shape[1:]
        raise ConfigError(
            f"model {name} needs images of at least {side}x{side} pixels; these are {h}x{w}. Choose "
            f"--model vgg-mini or resnet-mini (global pooling), or --image-size {side} or more"
        ) from None


def fits(name: str, input_shape: Shape) -> bool:
    """Whether model ``name`` takes images of ``input_shape`` (unknown for your own network: True)."""
    try:
        require_fit(name, input_shape)
        return True
    except ConfigError:
        return False


def require_fit(name: str, input_shape: Shape) -> None:
    """A ConfigError, saying how large an image model ``name`` needs, when these images are smaller."""
    layers = get_spec(name).downsampling
    if layers is not None:
        spatial_after(name, input_shape, layers)


# The architectures: the notebook's two conv-pool stages, or pools alone before a global pool.
NOTEBOOK_STAGES = (("conv", 3, 0), ("pool", 2, 0)) * 2
TWO_POOLS = (("pool", 2, 0),) * 2


def notebook_convnet(nn, input_shape: Shape, num_classes: int, relu_on_logits: bool, dropout: float = 0.0):
    """The notebook's ConvNet: conv 3x3 (32) -> ReLU -> pool 2 -> conv 3x3 (64) -> ReLU -> pool 2 ->
    flatten -> linear 128 -> ReLU -> linear. On 1x28x28 the flatten is 64 x 5 x 5 = 1600 wide."""
    h, w = spatial_after("convnet", input_shape, NOTEBOOK_STAGES)
    layers = [
        nn.Conv2d(input_shape[0], 32, kernel_size=3),  # (N, 32, H - 2, W - 2)
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 64, h, w)
        nn.Flatten(),  # (N, 64 h w)
        nn.Linear(64 * h * w, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    ]
    if dropout:  # NOTE: shifts the last Linear's index, so such a state_dict has other keys
        layers.insert(9, nn.Dropout(dropout))
    if relu_on_logits:
        layers.append(nn.ReLU())  # the notebook's bug, kept on purpose in `seed`
    return nn.Sequential(*layers)


def convnet_bn(
    nn, input_shape: Shape, num_classes: int, dropout: float = 0.0, pool_before_norm: bool = False
):
    """The notebook's network with batch norm after each conv and the hidden linear layer
    (Ioffe & Szegedy 2015).

    Each max-pool comes before its ReLU: the two commute (max(relu(a), relu(b)) = relu(max(a, b))),
    so the ReLU runs on a quarter of the values, and in place: the same function as
    ReLU-then-pool, with a faster step.

    ``pool_before_norm`` (``convnet-pool-bn``) moves each max-pool before its batch norm too, as
    airbench's conv blocks (Jordan 2024): the norm then runs on a quarter of the values, for a
    faster step again. Not the same function: the batch statistics are the pooled values'.
    """
    h, w = spatial_after("convnet-bn", input_shape, NOTEBOOK_STAGES)

    def stage(c_in: int, c_out: int) -> list:
        conv, norm, pool = nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.MaxPool2d(2)
        relu = nn.ReLU(inplace=True)
        return [conv, pool, norm, relu] if pool_before_norm else [conv, norm, pool, relu]

    return nn.Sequential(
        *stage(input_shape[0], 32),
        *stage(32, 64),  # (N, 64, h, w)
        nn.Flatten(),  # (N, 64 h w)
        nn.Linear(64 * h * w, 128, bias=False),
        nn.BatchNorm1d(128),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(128, num_classes),
    )


def _conv_bn_relu(nn, c_in: int, c_out: int) -> list:
    # No conv bias: the batch norm right after it has its own shift.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def basic_block(nn, c_in: int, c_out: int | None = None, stride: int = 1):
    """ResNet's basic block (He et al. 2016): relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)).

    The shortcut is the identity when the block keeps the shape, else a strided 1x1 conv and batch
    norm. Keys: "body.0.weight", "body.1.*", "body.3.weight", "body.4.*", "shortcut.0.weight",
    "shortcut.1.*".
    """
    c_out = c_in if c_out is None else c_out
    body = nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
        nn.BatchNorm2d(c_out),
    )
    shortcut = None  # the identity: the block keeps the shape
    if stride != 1 or c_in != c_out:
        shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
    return nn.ResidualBlock(body, shortcut)


def vgg_mini(nn, input_shape: Shape, num_classes: int, dropout: float = 0.0, widths=(32, 64, 128)):
    """Five 3x3 conv-BN-ReLU layers, sized for CPUs (about 0.29M parameters at width 1).

    One conv at full resolution only (that stage is the most expensive per channel), then two convs
    at half and two at a quarter of it, and a global max pool, so the head has no large linear
    layer and any image of at least 4x4 fits.
    """
    spatial_after("vgg-mini", input_shape, TWO_POOLS)
    a, b, c = widths
    return nn.Sequential(
        *_conv_bn_relu(nn, input_shape[0], a),
        nn.MaxPool2d(2),  # (N, a, H/2, W/2)
        *_conv_bn_relu(nn, a, b),
        *_conv_bn_relu(nn, b, b),
        nn.MaxPool2d(2),  # (N, b, H/4, W/4)
        *_conv_bn_relu(nn, b, c),
        *_conv_bn_relu(nn, c, c),
        nn.AdaptiveMaxPool2d(1),  # (N, c, 1, 1)
        nn.Flatten(),  # (N, c)
        nn.Dropout(dropout),
        nn.Linear(c, num_classes),
    )


def resnet_mini(nn, input_shape: Shape, num_classes: int, dropout: float = 0.0, widths=(32, 64, 128)):
    """vgg-mini with a residual basic block after each of its two widening convs (seven 3x3 convs,
    about 0.46M parameters at width 1): each block's identity skip lets the gradient reach the
    stem undiminished."""
    spatial_after("resnet-mini", input_shape, TWO_POOLS)
    a, b, c = widths
    return nn.Sequential(
        *_conv_bn_relu(nn, input_shape[0], a),
        nn.MaxPool2d(2),  # (N, a, H/2, W/2)
        *_conv_bn_relu(nn, a, b),
        basic_block(nn, b),  # index 7
        nn.MaxPool2d(2),  # (N, b, H/4, W/4)
        *_conv_bn_relu(nn, b, c),
        basic_block(nn, c),  # index 12
        nn.AdaptiveMaxPool2d(1),  # (N, c, 1, 1)
        nn.Flatten(),  # (N, c)
        nn.Dropout(dropout),
        nn.Linear(c, num_classes),
    )


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


register(
    ModelSpec(
        "seed",
        "the notebook's ConvNet as written (conv32-pool-conv64-pool-fc128-fc, ReLU on logits)",
        functools.partial(notebook_convnet, relu_on_logits=True),
        downsampling=NOTEBOOK_STAGES,
    )
)
register(
    ModelSpec(
        "convnet",
        "the notebook's ConvNet without the ReLU on the logits",
        functools.partial(notebook_convnet, relu_on_logits=False),
        downsampling=NOTEBOOK_STAGES,
    )
)
register(
    ModelSpec(
        "convnet-bn",
        "convnet with batch norm after each conv and the hidden linear layer",
        convnet_bn,
        downsampling=NOTEBOOK_STAGES,
    )
)
register(
    ModelSpec(
        "convnet-pool-bn",
        "convnet-bn with each max-pool before its batch norm: the norm runs on a quarter of the values",
        functools.partial(convnet_bn, pool_before_norm=True),
        downsampling=NOTEBOOK_STAGES,
    )
)
register(
    ModelSpec(
        "vgg-mini",
        "five 3x3 conv-BN-ReLU layers (32-64-64-128-128), global max pool; fast on CPU",
        vgg_mini,
        base_widths=(32, 64, 128),
        downsampling=TWO_POOLS,
    )
)
register(
    ModelSpec(
        "resnet-mini",
        "vgg-mini with a residual basic block in each of its two later stages (seven 3x3 convs)",
        resnet_mini,
        base_widths=(32, 64, 128),
        downsampling=TWO_POOLS,
    )
)
BUILT_IN_MODELS = tuple(MODELS)


def is_user_model(name: str) -> bool:
    """Whether ``name`` is the user's own network ("FILE.py:FUNCTION", or one given from Python)."""
    from cnnlab import user_models

    return user_models.is_user_model(name)


def get_spec(name: str) -> ModelSpec:
    from cnnlab import user_models

    if name in MODELS:
        return MODELS[name]
    if user_models.is_user_model(name):
        return _user_spec(name)
    raise ConfigError(
        f"unknown model {name!r}; choose one of: {', '.join(MODELS)}, or give your own as FILE.py:FUNCTION"
    )


def _user_spec(name: str) -> ModelSpec:
    """A user model as a spec: built (and checked) by ``cnnlab.user_models``, for torch only."""
    from cnnlab import user_models

    def build(nn, input_shape, num_classes, dropout: float = 0.0):
        if dropout:
            raise ConfigError(f"--dropout applies to the built-in models; put dropout into your model {name}")
        return user_models.build(name, input_shape, num_classes)

    return ModelSpec(name, "your own network", build, numpy=False, downsampling=None)


MAX_WIDTH = 16.0  # 16x vgg-mini is 41M parameters: beyond it, a typo rather than a plan


def check_build(name: str, backend: str, width: float, positional: bool = False) -> None:
    """What a build of model ``name`` asks for, checked once where options come in (``TrainConfig``,
    ``cnnlab summary``): a known model and backend, a model that backend runs, and a width other
    than 1 only for models whose widths scale. ``width``'s range is the caller's (TrainConfig's
    declaration). ``build_model`` trusts what passed here. ``positional``: the command line takes
    the model as an argument (``cnnlab summary MODEL``), not as ``--model``, and names it so."""
    spec = get_spec(name)
    model = spelled(f"model {name}", f"model={name!r}") if positional else given("model", name)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend == "numpy" and not spec.numpy:
        scratch_models = ", ".join(n for n, s in MODELS.items() if s.numpy)
        raise ConfigError(
            f"{model} is a torch module, which the numpy backend cannot run; use "
            f"{given('backend', 'torch')}, or one of: {scratch_models}"
        )
    if width != 1 and spec.base_widths is None:
        scalable = ", ".join(n for n, s in MODELS.items() if s.base_widths)
        raise ConfigError(f"{option('width')} applies to {scalable} only; drop it for {model}")


def build_model(
    name: str,
    input_shape: Shape,
    num_classes: int,
    backend: str = "torch",
    rng=None,
    dropout: float = 0.0,
    width: float = 1.0,
    dtype=None,
):
    """A fresh model for images of ``input_shape`` (C, H, W) in ``num_classes`` classes. For the
    numpy backend, ``rng`` (a NumPy Generator or seed) draws the initial weights and ``dtype`` is
    theirs (float32 by default). ``width`` multiplies the channel widths of the models that have them.
    The name, backend and width are trusted: ``check_build`` checked them where they came in."""
    spec = get_spec(name)
    widths = {} if spec.base_widths is None else {"widths": scaled_widths(spec.base_widths, width)}
    shape = tuple(int(n) for n in input_shape)
    if backend == "numpy":
        from cnnlab.scratch.nn import fuse_relu

        return fuse_relu(spec.build(scratch_nn(rng, dtype), shape, num_classes, dropout=dropout, **widths))
    return spec.build(torch_nn(), shape, num_classes, dropout=dropout, **widths)


# Test-time augmentation's views and their weights: the image (and its mirror, with --tta) carries
# half the weight when --tta-shift adds the two diagonal shifts, which share the other half.
TTA_UNSHIFTED_WEIGHT = 0.5


def tta_shifts(shift: int) -> list[tuple[tuple[int, int], float]]:
    """The (dy, dx) offsets test-time augmentation averages over, with their weights (summing to 1)."""
    if shift <= 0:
        return [((0, 0), 1.0)]
    other = (1 - TTA_UNSHIFTED_WEIGHT) / 2
    return [((0, 0), TTA_UNSHIFTED_WEIGHT), ((-shift, -shift), other), ((shift, shift), other)]


def pad_constant(x, by: int, fill: float | Sequence[float]):
    """Images (N, C, H, W) padded by ``by`` pixels on every side with ``fill``: one value, or one per
    channel (a dataset's normalised black, ``Dataset.background()``)."""
    import torch
    import torch.nn.functional as F

    values = [float(fill)] if isinstance(fill, (int, float)) else [float(v) for v in fill]
    if len(set(values)) == 1:
        return F.pad(x, (by,) * 4, value=values[0])
    n, c, h, w = x.shape
    padded = x.new_empty((n, c, h + 2 * by, w + 2 * by))
    padded.copy_(torch.tensor(values, dtype=x.dtype, device=x.device).view(1, c, 1, 1).expand_as(padded))
    padded[..., by : by + h, by : by + w] = x
    return padded


def shift_images(x, dy: int, dx: int, fill: float | Sequence[float]):
    """Images (N, C, H, W) moved down ``dy`` and right ``dx`` pixels (negative: up, left), ``fill``
    (the dataset's black after normalisation) coming in at the border."""
    if dy == dx == 0:
        return x
    h, w = x.shape[-2:]
    s = max(abs(dy), abs(dx))
    padded = pad_constant(x, s, fill)
    return padded[..., s - dy : s - dy + h, s - dx : s - dx + w]


def class_probabilities(model, x, fill, tta: bool = False, tta_shift: int = 0):
    """Softmax probabilities (N, K) of a torch ``model`` for normalised images ``x`` (N, C, H, W).

    Test-time augmentation: with ``tta``, the mean of the image's and its mirror's probabilities;
    with ``tta_shift``, also of the image shifted by that many pixels up-left and down-right
    (``fill`` coming in), weighted by ``tta_shifts``. The one TTA that training's evaluation,
    ``evaluate``, ``report`` and ``predict`` all use.
    """
    probs = 0
    for (dy, dx), weight in tta_shifts(tta_shift):
        view = shift_images(x, dy, dx, fill)
        p = model(view).float().softmax(1)
        if tta:
            p = (p + model(view.flip(-1)).float().softmax(1)) / 2
        probs = probs + weight * p
    return probs
