"""``cnnlab export``: ONNX that onnxruntime runs to within 1e-4 of torch, and safetensors weights."""

import json
import re

import numpy as np
import pytest
import torch

from cnnlab import data
from cnnlab.cli import main
from cnnlab.models import build_model
from cnnlab.runs.loader import load_run
from tests.conftest import REAL_DATA

TOLERANCE = 1e-4  # float32 logits; measured ~3e-6 on the 10,000 real test images


def sample_images(synthetic_dir) -> np.ndarray:
    """Real Fashion-MNIST test images when installed (the issue's check), else the synthetic ones."""
    raw = data.FASHION_MNIST.read(REAL_DATA or synthetic_dir)
    return data.FASHION_MNIST.dataset.normalize(raw.test_images[:1000])


def torch_logits(run_dir, x):
    with torch.inference_mode():
        return load_run(run_dir).model(torch.from_numpy(x)).numpy()


def test_onnx_matches_torch_on_test_images(trained_run, synthetic_dir, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    output = tmp_path / "model.onnx"
    assert main(["export", str(trained_run), "--format", "onnx", "--output", str(output)]) == 0
    assert capsys.readouterr().err == ""  # the exporter's chatter stays out of the user's terminal
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = sample_images(synthetic_dir)
    expected = torch_logits(trained_run, x)
    for batch in (x[:1], x):  # the batch dimension is dynamic
        got = session.run(["logits"], {"image": batch})[0]
        np.testing.assert_allclose(got, expected[: len(batch)], atol=TOLERANCE, rtol=0)
    meta = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert json.loads(meta["class_names"])[9] == "Ankle boot" and meta["model"] == "convnet"
    assert_training_normalisation(meta)


def assert_training_normalisation(meta: dict) -> None:
    """The metadata's input description is the normalisation training uses (cnnlab.data's constants),
    and following it gives the very images the model was trained on."""
    found = re.fullmatch(
        r"x = \(pixels / ([\d.]+) - mean\) / std per channel, mean \(([\d.]+)\), std \(([\d.]+)\), "
        r"float32 \(N, 1, 28, 28\), light item on black",
        meta["input"],
    )
    assert found, meta["input"]
    pixel_max, mean, std = map(float, found.groups())
    assert (pixel_max, [mean], [std]) == (255.0, json.loads(meta["mean"]), json.loads(meta["std"]))
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    as_described = ((pixels.astype(np.float32) / np.float32(pixel_max)) - np.float32(mean)) / np.float32(std)
    np.testing.assert_array_equal(as_described, data.FASHION_MNIST.dataset.normalize(pixels))
    assert json.loads(meta["class_names"]) == list(data.CLASS_NAMES) and meta["output"] == "logits (N, 10)"
    assert json.loads(meta["input_shape"]) == [1, 28, 28] and meta["dataset"] == "fashion-mnist"
    assert meta["producer"] == "cnnlab"


def test_safetensors_holds_the_exact_weights(trained_run, synthetic_dir, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    output = tmp_path / "weights.safetensors"
    assert main(["export", str(trained_run), "--format", "safetensors", "--output", str(output)]) == 0
    model = build_model("convnet", (1, 28, 28), 10)
    model.load_state_dict(load_file(output))
    x = sample_images(synthetic_dir)[:100]
    with torch.inference_mode():
        assert np.array_equal(model.eval()(torch.from_numpy(x)).numpy(), torch_logits(trained_run, x))
    with safe_open(output, "pt") as fh:
        assert fh.metadata()["model"] == "convnet"
        assert_training_normalisation(fh.metadata())


def test_export_defaults_to_the_run_directory(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert main(["export", str(run), "--format", "safetensors"]) == 0
    assert (run / "model.safetensors").is_file()
