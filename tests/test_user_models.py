"""Your own network: --model FILE.py:FUNCTION and cnnlab.train(model=...), kept in the run so it
reloads after the original moved or changed, every tool working on it, and every mistake one line."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import ConfigError

NETS = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """A network with its own forward(): no Sequential says how data flows."""

    def __init__(self, channels, classes):
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.head(x.amax(dim=(2, 3)))


def build(input_shape, num_classes):
    return Tiny(input_shape[0], num_classes)


def too_many(input_shape, num_classes):
    return Tiny(input_shape[0], num_classes + 1)


def broken(input_shape, num_classes):
    raise RuntimeError("no such layer")


def not_a_module(input_shape, num_classes):
    return [1, 2, 3]


def flat_only(input_shape, num_classes):
    return nn.Linear(10, num_classes)
'''

FAST = ["--dataset", "digits", "--epochs", "2", "--lr", "0.01", "--ema", "0", "--precision", "32", "--quiet"]


@pytest.fixture
def nets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    return tmp_path / "nets.py"


def test_a_network_from_a_file_trains_and_the_run_keeps_a_copy(nets, tmp_path, capsys):
    assert main(["train", "--model", "nets.py:build", "--out", "run", *FAST]) == 0
    run = tmp_path / "run"
    assert (run / "model.py").read_text() == NETS
    assert json.loads((run / "config.json").read_text())["model"] == "nets.py:build"
    capsys.readouterr()
    # The original moves and changes: the run still loads, from its own copy.
    nets.rename(tmp_path / "elsewhere.py")
    (tmp_path / "nets.py").write_text("def build(**kw):\n    raise SystemExit('the wrong file was used')\n")
    loaded = cnnlab.load_run(run)
    assert loaded.evaluate()["accuracy"] == json.loads((run / "summary.json").read_text())["test_accuracy"]
    assert main(["evaluate", str(run)]) == 0
    assert main(["predict", str(run), str(tmp_path / "run" / "loss.png")]) == 0
    assert main(["export", str(run), "--format", "safetensors"]) == 0
    assert main(["show", str(run), "features", "--image", "0", "--out", str(tmp_path / "fig")]) == 0
    assert main(["report", str(run)]) == 0
    assert (tmp_path / "fig" / "features-0-00-layerconv-Conv2d.png").is_file()


def test_onnx_export_of_your_own_network_runs_in_onnxruntime(nets, tmp_path):
    import onnxruntime

    assert main(["train", "--model", "nets.py:build", "--out", "run", *FAST]) == 0
    run = cnnlab.load_run(tmp_path / "run")
    path = run.export("onnx", tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    expected = run.model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(session.run(None, {"image": x})[0], expected, rtol=1e-4, atol=1e-5)


def test_summary_reads_a_network_with_its_own_forward_from_one_pass(nets, capsys):
    assert main(["summary", "nets.py:build", "--dataset", "cifar10"]) == 0
    out = capsys.readouterr().out
    assert "input (3, 32, 32)" in out
    rows = [line.split()[:2] for line in out.splitlines()[4:7]]
    assert rows == [["input", "(3,"], ["conv", "Conv2d"], ["head", "Linear"]]
    assert "Conv2d 3->8, 3x3, padding 1  (8, 32, 32)" in out and "mult-adds:" in out


@pytest.mark.parametrize(
    "model, message",
    [
        ("nets.py:missing", r"nets.py defines no function 'missing' \(it defines Tiny, broken, build"),
        ("nets.py:broken", r"raised RuntimeError: no such layer"),
        ("nets.py:not_a_module", r"returned a list, not a torch.nn.Module"),
        ("nets.py:too_many", r"outputs of shape \(2, 11\) for 2 images, but the dataset has 10 classes"),
        ("nets.py:flat_only", r"fails on a batch of images shaped \(2, 1, 8, 8\)"),
        ("absent.py:build", r"names absent.py, which is not a file"),
    ],
)
def test_a_model_file_that_does_not_give_a_network_is_one_line_and_nothing_is_made(
    nets, tmp_path, capsys, model, message
):
    import re

    assert main(["train", "--model", model, "--out", "run", *FAST]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "numpy"], "is a torch module, which the numpy backend cannot run"),
        (["--width", "2"], "--width applies to vgg-mini, resnet-mini only"),
        (["--dropout", "0.2"], "put dropout into your model"),
    ],
)
def test_options_that_only_built_in_models_have_are_refused(nets, tmp_path, capsys, extra, message):
    assert main(["train", "--model", "nets.py:build", "--out", "run", *FAST, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_module_given_from_python_is_copied_and_reloads_in_a_new_process(tmp_path):
    """A notebook's class is pickled by value, so a fresh interpreter that never saw it loads the run."""
    script = tmp_path / "notebook.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import torch, cnnlab
            from torch import nn

            class Mine(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(1, 6, 3)
                    self.out = nn.Linear(6, 10)

                def forward(self, x):
                    return self.out(torch.relu(self.conv(x)).mean(dim=(2, 3)))

            torch.manual_seed(0)
            net = Mine()
            before = {{k: v.clone() for k, v in net.state_dict().items()}}
            out = {str(tmp_path / "run")!r}
            run = cnnlab.train(model=net, dataset="digits", epochs=1, ema=0, out=out, quiet=True)
            assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # yours is untouched
            print(run.summary["test_accuracy"])
            """
        )
    )
    trained = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "model.pkl").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] == "python:Mine"
    script.unlink()  # the class's source is gone too
    check = (
        "import cnnlab; run = cnnlab.load_run('run'); "
        "print(type(run.model).__name__, run.evaluate()['accuracy'])"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    name, accuracy = loaded.stdout.split()
    assert name == "Mine" and float(accuracy) == pytest.approx(float(trained.stdout.strip()))


def test_a_builder_function_given_from_python_trains(tmp_path):
    from torch import nn

    def small(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))

    run = cnnlab.train(model=small, dataset="digits", epochs=3, ema=0, out=tmp_path / "run", quiet=True)
    assert run.config.model == "python:small" and run.summary["test_accuracy"] > 0.5
    assert cnnlab.summary(small(input_shape=(1, 8, 8), num_classes=10), (1, 8, 8)).params == 650


def test_a_run_whose_model_code_is_gone_says_so(nets, tmp_path):
    assert main(["train", "--model", "nets.py:build", "--out", "run", *FAST]) == 0
    (tmp_path / "run" / "model.py").unlink()
    from cnnlab.errors import RunDirError

    with pytest.raises(RunDirError, match="holds no model.py or model.pkl to rebuild it"):
        _ = cnnlab.load_run(tmp_path / "run").model


def test_a_run_of_a_built_in_model_runs_no_code_from_its_directory(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "ran"
    (run / "model.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data-dir",
                str(json.loads((run / "config.json").read_text())["data_dir"]),
            ]
        )
        == 0
    )
    assert not marker.exists()


def test_model_must_be_a_name_a_file_spec_or_a_module():
    with pytest.raises(
        ConfigError, match="model= takes a built-in model's name, 'FILE.py:FUNCTION', a torch.nn.Module"
    ):
        cnnlab.train(model=42, dataset="digits")
