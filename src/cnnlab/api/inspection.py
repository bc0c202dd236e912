"""``cnnlab.summary``, ``cnnlab.convolve`` and ``cnnlab.list_models``: looking inside models."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.api.edge import api_edge
from cnnlab.errors import ConfigError, option
from cnnlab.inspect.convolve import Example, Result

if TYPE_CHECKING:
    from cnnlab.data import LabelledImages
    from cnnlab.inspect.summary import Summary


@api_edge
def summary(
    model: Any = "convnet",
    input_shape: tuple[int, int, int] | None = None,
    batch_size: int = 1,
    backend: str = "torch",
    width: float = 1.0,
    dataset: str | None = None,
) -> Summary:
    """The layer table ``cnnlab summary`` prints (``print()`` it; Jupyter shows it as HTML): output
    shapes, parameters, mult-adds and receptive fields. ``model`` is a registry name or
    ``"FILE.py:FUNCTION"``, built for ``dataset``'s images and classes (Fashion-MNIST by default) and
    ``backend`` (torch or numpy, at ``width`` for vgg-mini and resnet-mini), or a torch or
    ``cnnlab.scratch`` module. ``input_shape`` (C, H, W) walks another input through it: the table
    then stops at the first layer it does not fit. A module with its own ``forward()`` is read from
    one forward pass."""
    return summary_table(model, input_shape, batch_size, backend, width, dataset)


def summary_table(
    model: Any,
    input_shape: tuple[int, int, int] | None,
    batch_size: int,
    backend: str,
    width: float,
    dataset: str | None,
) -> Summary:
    """``summary`` for its callers, ``cnnlab.summary`` and ``cnnlab summary``: the options are checked
    here, once, and named as the caller spells them (``--width`` or ``width=``)."""
    from cnnlab.data import DEFAULT, open_dataset
    from cnnlab.inspect.describe import DescribeError
    from cnnlab.inspect.summary import heading
    from cnnlab.inspect.traced import summarize_model
    from cnnlab.models import build_model, check_build
    from cnnlab.training.config import check_option

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"{option('batch_size')} must be a whole number >= 1. Received: {batch_size!r}")
    if isinstance(model, str):
        check_option("width", width)
        check_build(model, backend, width, positional=True)
    data = open_dataset(dataset or DEFAULT)
    name = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        model = build_model(model, data.input_shape, data.num_classes, backend, width=width)
        name = name if width == 1 else f"{name} at width {width:g}"
    else:  # a module says which engine it belongs to; the backend= argument names a registry build
        backend = _backend_of(model)
    shape = tuple(input_shape or data.input_shape)
    try:
        table = summarize_model(model, shape, batch_size, name=name)
    except DescribeError as exc:
        raise ConfigError(f"cannot summarise model {name!r}: {exc}") from None
    table.heading = heading(name, backend, shape, batch_size)
    return table


def _backend_of(model: Any) -> str:
    from cnnlab.scratch.module import Module

    return "numpy" if isinstance(model, Module) else "torch"


@dataclasses.dataclass(frozen=True, repr=False)  # Result's repr: the output and the verdict
class Convolution(Result):
    """What ``cnnlab.convolve`` returns: the result (``.reference``, ``.agree``, ``.explain()``), shown
    in a notebook as its grids and sums, and drawn frame by frame by ``.animate()``."""

    example: Example  # what was convolved: ``cnnlab.convolve`` always keeps it

    @api_edge
    def animate(self, ms_per_frame: int = 900) -> Animation:
        """The filter sliding over the input, one output value per frame (``cnnlab convolve
        --animate``): a notebook shows it playing, ``.save(path)`` writes the GIF."""
        from cnnlab.inspect.animate import gif_bytes

        if isinstance(ms_per_frame, bool) or not isinstance(ms_per_frame, int) or ms_per_frame < 20:
            raise ConfigError(f"ms_per_frame must be a whole number >= 20. Received: {ms_per_frame!r}")
        try:
            data, frames = gif_bytes(self.example, self.reference, ms_per_frame)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return Animation(data, frames)


@dataclasses.dataclass(frozen=True)
class Animation:
    """A GIF held in memory: a notebook shows it playing; ``save(path)`` writes it."""

    gif: bytes
    frames: int

    @api_edge
    def save(self, path: str | Path) -> Path:
        from cnnlab.fileio import require_writable_dir, write_atomic

        path = Path(path)
        require_writable_dir(path.parent, "path=")
        write_atomic(path, lambda fh: fh.write(self.gif))
        return path

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.gif).decode("ascii")
        return f'<img alt="the convolution, frame by frame" src="data:image/gif;base64,{data}">'

    def __repr__(self) -> str:
        return f"Animation({self.frames} frames, {len(self.gif):,} bytes of GIF)"


@api_edge
def convolve(
    input: Any = None,
    kernel: Any = None,
    bias: Any = 0.0,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    color: bool = False,
) -> Convolution:
    """One small convolution computed three ways (the notebook's loops, cnnlab.scratch, torch) in
    float64, as ``cnnlab convolve`` does; the default is the notebook's example, and ``color=True``
    a colour image's (three channels, one filter slice each). The result has ``.reference`` (the
    output), ``.agree`` and ``.explain()`` (each value as its sum of products)."""
    from cnnlab.inspect import convolve as demo

    default_input, default_kernel = (
        (demo.COLOR_INPUT, demo.COLOR_KERNEL) if color else (demo.NOTEBOOK_INPUT, demo.NOTEBOOK_KERNEL)
    )
    try:
        example = demo.make_example(
            default_input if input is None else input,
            default_kernel if kernel is None else kernel,
            bias,
            stride,
            padding,
            dilation,
        )
        result = demo.run(example)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return Convolution(result.reference, result.scratch, result.torch, example)


@api_edge
def load_data(data_dir: str | None = None, *, dataset: str | None = None) -> LabelledImages:
    """A dataset's images as uint8 arrays: ``train_images`` (N, C, H, W), ``train_labels``,
    ``test_images``, ``test_labels`` and the ``classes``; Fashion-MNIST by default, found as ``cnnlab
    data where`` finds it (downloaded if absent)."""
    from cnnlab.data import DEFAULT, load_dataset

    found, images = load_dataset(dataset or DEFAULT, data_dir, quiet=True)
    return dataclasses.replace(images, classes=found.classes, name=found.title)


@api_edge
def list_models() -> list[dict[str, Any]]:
    """The registry: each model's name, description, input shape and whether the NumPy engine has it."""
    from cnnlab.models import MODELS

    return [
        {
            "name": spec.name,
            "description": spec.description,
            "numpy_backend": spec.numpy,
            "min_image_side": _smallest(spec),
        }
        for spec in MODELS.values()
    ]


def _smallest(spec) -> int:
    from cnnlab.models import smallest_fit

    return smallest_fit(spec.downsampling or ())
