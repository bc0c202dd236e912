"""docs/tutorial.ipynb runs top to bottom, on tiny settings, with the real data when it is installed
and the synthetic set otherwise."""

import json
import os
import sys
from pathlib import Path

import pytest

import cnnlab
from tests.conftest import REAL_DATA
from tests.tutorial_settings import small_settings

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A kernel spec for this very interpreter, so the test never depends on what is installed."""
    spec = tmp_path / "jupyter" / "kernels" / "cnnlab-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "cnnlab test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return "cnnlab-test"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
    )
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(kernel, synthetic_dir, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [settings] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    settings.source = small_settings(None if REAL_DATA else synthetic_dir, tmp_path / "runs")
    nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") + o.get("data", {}).get("text/html", "")
        for o in outputs
    )
    assert "[[ 0. -6.]\n [ 6.  6.]]" in text and "cnnlab agrees: True   torch agrees: True" in text
    assert "8 maps hold 8 * 25 * 25 = 5000 values" in text and "torch agrees: (8, 25, 25) 5000" in text
    assert "parameters:            225,034" in text
    assert "does not fit layer 7 (Linear)" in text
    for name in ("seed-sgd", "convnet-overfit", "convnet-early"):
        assert f"{name} " in text and (tmp_path / "runs" / name / "loss.png").is_file()
    for run in ("sgd-lr0.1-seed0", "adam-lr0.001-seed0"):
        assert (tmp_path / "runs" / "compare" / run / "loss.png").is_file()
    assert (
        len(cnnlab.load_run(tmp_path / "runs" / "compare" / "adam-lr0.001-seed0").history) == 4
    )  # trained further
    assert (
        "lowest validation loss" in text and "(mean of 20 images)" in text and "stopped after epoch" in text
    )
    assert "Suggested learning rate" in text and "± " in text
    assert "red 81 + green 0 + blue 0 = 81" in text  # the colour convolution, channel by channel
    assert "digits: test accuracy" in text and "with vgg-mini" in text
    assert (tmp_path / "runs" / "digits" / "dataset.json").is_file()
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # the twin-axis loss, filters, pooling, invariance, confusion, mistakes, the prepared photo
    assert len(images) >= 7
    assert any("text/html" in o.get("data", {}) and "cnnlab-run" in o["data"]["text/html"] for o in outputs)
    [error] = [o for o in outputs if o.output_type == "error"]
    assert error.ename == "ConfigError" and "did you mean lr=?" in error.evalue


def test_notebook_uses_only_the_public_api():
    """`import cnnlab` is the notebook's only door into cnnlab: no `cnnlab.<submodule>`, no
    `from cnnlab... import`; besides it, only numpy, torch, matplotlib and the standard library."""
    import ast
    import re

    import cnnlab

    nb = nbformat.read(NOTEBOOK, as_version=4)
    allowed_modules = {"cnnlab", "numpy", "torch", "matplotlib", "tempfile", "pathlib"}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name == "cnnlab" or alias.name.split(".")[0] in allowed_modules - {
                        "cnnlab"
                    }, alias.name
            elif isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] in allowed_modules - {"cnnlab"}, node.module
        for name in re.findall(r"\bcnnlab\.(\w+)", source):
            assert name in cnnlab.__all__, f"the notebook reaches into cnnlab.{name}"
