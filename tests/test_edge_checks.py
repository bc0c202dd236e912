"""Each option is checked once, where it comes in (``TrainConfig``, ``cnnlab summary``'s edge,
``join_world``), and the inner code trusts it: the command line and the Python API refuse the same
input with the same message, spelled as each caller writes it, before any work."""

import importlib.util
from pathlib import Path

import pytest

import cnnlab
from cnnlab.cli import main

BAD_WIDTHS = [
    # (model, width as typed, as passed, the refusal's text after the option's name)
    ("vgg-mini", "0", 0, " must be a number in (0, 16], e.g. 2. Received: 0"),
    ("resnet-mini", "17", 17, " must be a number in (0, 16], e.g. 2. Received: 17"),
    (
        "convnet",
        "2",
        2,
        " applies to vgg-mini, resnet-mini only; drop it for {model}",
    ),
]


# Were a check missing, the run would start: on tiny data it then ends in seconds, and the test fails.
TINY = dict(train_size=200, valid_size=100, epochs=1, batch_size=50)


def tiny(data: Path) -> list[str]:
    return ["--data-dir", str(data), *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()), "--quiet"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnlab: error: "), err
    return err.removeprefix("cnnlab: error: ").rstrip("\n")


@pytest.mark.parametrize("model, typed, passed, refusal", BAD_WIDTHS)
def test_train_refuses_a_bad_width_alike_from_the_cli_and_the_api(
    synthetic_dir, tmp_path, capsys, model, typed, passed, refusal
):
    out = tmp_path / "never"
    assert main(["train", "--model", model, "--width", typed, "--out", str(out), *tiny(synthetic_dir)]) == 2
    said = _one_line_error(capsys)
    assert said.startswith("--width" + refusal.format(model=f"--model {model}").split(". Received")[0])
    with pytest.raises(cnnlab.ConfigError) as caught:
        cnnlab.train(model=model, width=passed, out=str(out), data_dir=str(synthetic_dir), quiet=True, **TINY)
    assert str(caught.value) == "width=" + refusal.format(model=f"model={model!r}")
    assert not out.exists()


@pytest.mark.parametrize("model, typed, passed, refusal", BAD_WIDTHS)
def test_summary_refuses_a_bad_width_as_train_does(capsys, model, typed, passed, refusal):
    """``cnnlab summary`` names the option as the command line writes it (it once said ``width=``)."""
    assert main(["summary", model, "--width", typed]) == 2
    said = _one_line_error(capsys)  # the command takes the model as an argument, not as --model
    assert said.startswith("--width" + refusal.format(model=f"model {model}").split(". Received")[0])
    with pytest.raises(cnnlab.ConfigError) as caught:
        cnnlab.summary(model, width=passed)
    assert str(caught.value) == "width=" + refusal.format(model=f"model={model!r}")


def test_summary_refuses_a_bad_batch_size_and_backend_from_either_side(capsys):
    assert main(["summary", "seed", "--batch-size", "0"]) == 2
    assert _one_line_error(capsys) == "--batch-size must be a whole number >= 1. Received: 0"
    for bad in (0, True, 2.0):
        with pytest.raises(cnnlab.ConfigError) as caught:
            cnnlab.summary("seed", batch_size=bad)
        assert str(caught.value) == f"batch_size= must be a whole number >= 1. Received: {bad!r}"
    with pytest.raises(cnnlab.ConfigError, match=r"^unknown backend 'jax'; choose one of: torch, numpy$"):
        cnnlab.summary("seed", backend="jax")


def test_a_torch_only_model_is_refused_for_numpy_with_one_message(tmp_path, capsys):
    network = tmp_path / "net.py"
    network.write_text(
        "import torch\n"
        "def build(input_shape, num_classes):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes))\n"
    )
    name = f"{network}:build"
    refusal = "is a torch module, which the numpy backend cannot run; use {torch}, or one of: seed,"
    assert main(["train", "--model", name, "--backend", "numpy", "--out", str(tmp_path / "never")]) == 2
    assert _one_line_error(capsys).startswith(f"--model {name} " + refusal.format(torch="--backend torch"))
    assert main(["summary", name, "--backend", "numpy"]) == 2
    assert _one_line_error(capsys).startswith(f"model {name} " + refusal.format(torch="--backend torch"))
    for call in (cnnlab.train, cnnlab.summary):
        with pytest.raises(cnnlab.ConfigError) as caught:
            call(model=name, backend="numpy")
        assert str(caught.value).startswith(f"model={name!r} " + refusal.format(torch="backend='torch'"))


def test_the_numpy_backend_is_refused_under_torchrun_before_any_work(tmp_path, monkeypatch, capsys):
    """torchrun's environment, as rank 0 of two sees it: refused before the process group is
    joined, the directory claimed or the data read."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)  # were the check missing, joining fails at once
    out = tmp_path / "never"
    args = ["train", "--backend", "numpy", "--ema", "0", "--out", str(out), "--data-dir", str(tmp_path)]
    assert main(args) == 2
    message = "the numpy backend trains in one process; run it without torchrun"
    assert _one_line_error(capsys) == message
    with pytest.raises(cnnlab.ConfigError, match=f"^{message}$"):
        cnnlab.train(backend="numpy", ema=0, out=str(out), data_dir=str(tmp_path))
    assert not out.exists()


def test_tensorboard_is_asked_for_once_when_the_options_are_checked(
    synthetic_dir, tmp_path, monkeypatch, capsys
):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name == "tensorboard" else real(name, *rest)
    )
    out = tmp_path / "never"
    assert main(["train", "--tensorboard", "--out", str(out), *tiny(synthetic_dir)]) == 2
    assert _one_line_error(capsys) == (
        "--tensorboard needs the tensorboard package; install it with "
        "`pip install 'cnnlab[tensorboard]'` or drop --tensorboard"
    )
    with pytest.raises(cnnlab.ConfigError, match=r"^tensorboard= needs the tensorboard package"):
        cnnlab.train(tensorboard=True, out=str(out), data_dir=str(synthetic_dir), quiet=True, **TINY)
    assert not out.exists()
