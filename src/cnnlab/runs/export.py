"""A trained model out of cnnlab: ONNX for any runtime, safetensors for the weights alone.

Both files take the model's input as training saw it: float32 (N, C, H, W), normalised per channel
``(x/255 - mean) / std``, and give logits (N, K); the input shape, the class names and the
normalisation travel in each file's metadata.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

from cnnlab.errors import ConfigError, option
from cnnlab.fileio import write_atomic

FORMATS = ("onnx", "safetensors")
OPSET = 18  # the opset torch 2.x's exporter targets natively; onnxruntime >= 1.14 runs it


def normalization(dataset) -> str:
    c, h, w = dataset.input_shape
    mean = ", ".join(f"{m:.4g}" for m in dataset.mean)
    std = ", ".join(f"{s:.4g}" for s in dataset.std)
    style = ", light item on black" if dataset.item_on_black else ""
    return (
        f"x = (pixels / 255 - mean) / std per channel, mean ({mean}), std ({std}), "
        f"float32 (N, {c}, {h}, {w}){style}"
    )


def metadata(run) -> dict[str, str]:
    dataset = run.dataset
    return {
        "producer": "cnnlab",
        "model": run.config.model,
        "run": str(run.path),
        "dataset": dataset.name,
        "class_names": json.dumps(list(dataset.classes)),
        "input_shape": json.dumps(list(dataset.input_shape)),
        "mean": json.dumps(list(dataset.mean)),
        "std": json.dumps(list(dataset.std)),
        "input": normalization(dataset),
        "output": f"logits (N, {dataset.num_classes})",
    }


def onnx_bytes(model, input_shape: tuple[int, int, int]) -> bytes:
    """The model as ONNX with a dynamic batch dimension, via torch.export (torch's current exporter)."""
    import torch

    example = torch.zeros(2, *input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _quiet_logging("torch.onnx", "torch.export", "torch._dynamo"):
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's concern
        program = torch.onnx.export(
            model.eval(),
            (example,),
            dynamo=True,
            verbose=False,
            input_names=["image"],
            output_names=["logits"],
            opset_version=OPSET,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        if program is None:  # only the legacy TorchScript exporter returns None
            raise RuntimeError("torch.onnx.export returned no program")
        program.save(buffer)  # type: ignore[arg-type]  # it writes to any binary file object
    return buffer.getvalue()


class _quiet_logging:
    def __init__(self, *names: str):
        self.loggers = [logging.getLogger(n) for n in names]

    def __enter__(self):
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)


def export_onnx(run, output: Path) -> None:
    import onnx

    proto = onnx.load_from_string(onnx_bytes(run.model, run.dataset.input_shape))
    for key, value in metadata(run).items():
        proto.metadata_props.add(key=key, value=value)
    data = proto.SerializeToString()
    write_atomic(output, lambda fh: fh.write(data), stream=True)


def export_safetensors(run, output: Path) -> None:
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in run.model.state_dict().items()}
    data = save(tensors, metadata=metadata(run))
    write_atomic(output, lambda fh: fh.write(data), stream=True)


def export(run, format: str, output: str | Path | None = None) -> Path:
    """Write ``run``'s model as ``format`` ("onnx" or "safetensors") to ``output`` (default:
    RUN_DIR/model.FORMAT); return the path. The one entry point of the command and the Python API."""
    from cnnlab.training import rundir

    path = rundir.prepare_output(output if output else run.path / f"model.{format}", option("output"))
    if format == "onnx":
        require_onnx()
        export_onnx(run, path)
    else:
        export_safetensors(run, path)
    return path


def require_onnx() -> None:
    """The export extra, or one line saying how to install it."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise ConfigError(
            f"--format onnx needs the export extra ({exc.name} is missing); run: pip install 'cnnlab[export]'"
        ) from None
