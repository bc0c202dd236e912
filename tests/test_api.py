"""`import cnnlab`, the public Python API: train -> Run -> evaluate/predict/export/plot/report, with
the command line's options, run directories and one-line errors."""

import dataclasses
import html.parser
import json
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import cnnlab
from cnnlab.cli import main
from tests.conftest import requires_real_data

SMALL = dict(train_size=300, valid_size=100, batch_size=50, lr=0.01)
NO_LR = {k: v for k, v in SMALL.items() if k != "lr"}


@pytest.fixture(scope="module")
def api_run(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return cnnlab.train(
        # float32, so the test accuracy it reports and evaluate()'s (always float32) agree exactly
        model="convnet",
        epochs=2,
        precision="32",
        data_dir=str(synthetic_dir),
        out=str(out),
        quiet=True,
        **SMALL,
    )


def test_import_is_light_and_public_names_stay_functions():
    code = (
        "import sys, cnnlab; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib'}))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "[]"
    for module in pkgutil.walk_packages(cnnlab.__path__, "cnnlab."):  # import every submodule ...
        __import__(module.name)
    for name in (
        "train",
        "load_run",
        "summary",
        "compare",
        "lr_find",
        "convolve",
        "list_models",
        "load_data",
    ):
        assert callable(getattr(cnnlab, name)) and not isinstance(getattr(cnnlab, name), type(sys)), name
    assert isinstance(cnnlab.Run, type) and issubclass(cnnlab.ConfigError, cnnlab.CnnlabError)
    assert set(cnnlab.__all__) <= set(dir(cnnlab))


def test_train_returns_a_run_like_the_cli_makes(api_run, synthetic_dir, tmp_path):
    assert isinstance(api_run, cnnlab.Run)
    assert api_run.config.epochs == 2 and api_run.config.model == "convnet"
    assert [row["epoch"] for row in api_run.history] == [1, 2]
    assert api_run.summary["test_accuracy"] == pytest.approx(api_run.evaluate()["accuracy"], abs=1e-9)
    cli_run = tmp_path / "cli"
    args = ["train", "--epochs", "2", "--data-dir", str(synthetic_dir), "--out", str(cli_run), "--quiet"]
    args += ["--train-size", "300", "--valid-size", "100", "--batch-size", "50", "--lr", "0.01"]
    assert main([*args, "--model", "convnet", "--precision", "32"]) == 0
    same = cnnlab.load_run(cli_run)
    assert [r["valid_loss"] for r in same.history] == [r["valid_loss"] for r in api_run.history]
    assert {p.name for p in cli_run.iterdir()} == {p.name for p in api_run.path.iterdir()}


def test_evaluate_predict_export_plot_report(api_run, synthetic_dir, tmp_path):
    scores = api_run.evaluate("valid")
    assert 0 <= scores["accuracy"] <= 1 and len(scores["per_class"]) == 10
    assert not (api_run.path / "evaluation-valid.json").exists()  # evaluate() writes nothing
    images = cnnlab.load_data(str(synthetic_dir)).test_images[:5]
    from_arrays = api_run.predict(images, top=2)
    assert len(from_arrays) == 5 and all(len(r["top"]) == 2 for r in from_arrays)
    assert api_run.predict(images[0])[0]["top"] == api_run.predict(images[:1])[0]["top"]
    from PIL import Image

    photo = tmp_path / "item.png"
    Image.fromarray(images[0, 0]).resize((56, 56)).save(photo)
    assert api_run.predict(photo)[0]["image"] == str(photo)
    onnx_path = api_run.export("onnx", tmp_path / "m.onnx")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path))
    x = ((images / np.float32(255) - np.float32(0.5)) / np.float32(0.5)).astype(np.float32)  # (N, 1, 28, 28)
    logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    import torch

    with torch.no_grad():
        expected = api_run.model(torch.from_numpy(x)).numpy()
    assert np.allclose(logits, expected, atol=1e-4)
    assert api_run.export("safetensors").name == "model.safetensors"
    figure = api_run.plot()
    assert len(figure.axes) == 3  # loss, its twin, accuracy
    assert figure.get_suptitle() == api_run.config.title
    assert api_run.report(tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_bad_options_raise_the_cli_message_in_pythons_words(capsys, tmp_path):
    assert main(["train", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    cli_message = capsys.readouterr().err.strip().removeprefix("cnnlab: error: ")
    with pytest.raises(cnnlab.ConfigError) as caught:
        cnnlab.train(lr=-1.0, out=str(tmp_path / "y"))
    assert cli_message.startswith("--lr must be") and str(caught.value) == cli_message.replace("--lr", "lr=")
    with pytest.raises(cnnlab.ConfigError, match="unknown option epoch=; did you mean epochs=\\?"):
        cnnlab.train(epoch=3)
    with pytest.raises(cnnlab.ConfigError, match="unknown option learning_rate=; did you mean lr=\\?"):
        cnnlab.train(learning_rate=0.1)
    with pytest.raises(cnnlab.RunDirError, match="does not exist"):
        cnnlab.load_run(tmp_path / "nowhere")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_bad_arguments_to_run_methods(api_run):
    with pytest.raises(cnnlab.ConfigError, match="format must be one of onnx, safetensors"):
        api_run.export("pickle")
    with pytest.raises(cnnlab.ConfigError, match="channels .* come first or last"):
        api_run.predict(np.zeros((3, 5, 32, 32), np.uint8))
    with pytest.raises(cnnlab.ConfigError, match="one image or a batch"):
        api_run.predict(np.zeros((1, 1, 1, 28, 28), np.uint8))
    with pytest.raises(cnnlab.ConfigError, match="0 to 255"):
        api_run.predict(np.full((28, 28), 300.0))
    with pytest.raises(cnnlab.ConfigError, match="top must be between 1 and 10"):
        api_run.predict(np.zeros((28, 28), np.uint8), top=11)


class _Checker(html.parser.HTMLParser):
    """Tags must close in order; records the text."""

    VOID = {"img", "br", "meta", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data):
        self.text.append(data)


def parse(markup):
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert checker.stack == []
    return " ".join(checker.text)


def test_html_cards_parse(api_run):
    text = parse(api_run._repr_html_())
    assert "convnet" in text and str(api_run.path) in text and "%" in text
    assert 'src="data:image/png;base64,' in api_run._repr_html_()
    table = cnnlab.summary("convnet")
    assert "Conv2d" in parse(table._repr_html_())
    assert repr(api_run).startswith("Run(")


def test_summary_prints_as_the_cli(capsys):
    assert main(["summary", "convnet"]) == 0
    cli = capsys.readouterr().out
    assert str(cnnlab.summary("convnet")) in cli
    import torch

    custom = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten())
    assert "3136" in str(cnnlab.summary(custom, (1, 30, 30)))  # 4 x 28 x 28 flattened


def test_convolve_and_list_models():
    result = cnnlab.convolve()
    assert result.reference.tolist() == [[[0.0, -6.0], [6.0, 6.0]]] and result.agree
    assert result.explain()[0].endswith("= 0")
    with pytest.raises(cnnlab.ConfigError, match="padding=: the padding is at most 32"):
        cnnlab.convolve(padding=1000)
    names = [m["name"] for m in cnnlab.list_models()]
    assert {"seed", "convnet", "vgg-mini"} <= set(names)


def test_history_frame(api_run):
    pytest.importorskip("pandas")
    frame = api_run.history_frame()
    assert list(frame.index) == [1, 2] and "valid_accuracy" in frame.columns


def test_compare_and_lr_find_as_functions(synthetic_dir, tmp_path):
    result = cnnlab.compare(
        ["sgd", "adam"], seeds=1, out=tmp_path / "c", epochs=1, data_dir=str(synthetic_dir), **NO_LR
    )
    assert [row["optimizer"] for row in result.rows] == ["sgd", "adam"] and "sgd" in str(result)
    assert (tmp_path / "c" / "compare.csv").is_file()
    with pytest.raises(cnnlab.ConfigError, match="compare\\(\\) sets lr itself"):
        cnnlab.compare(lr=0.1)
    found = cnnlab.lr_find(steps=20, out=str(tmp_path / "l"), data_dir=str(synthetic_dir), **NO_LR)
    assert len(found.sweep.lrs) > 5 and (tmp_path / "l" / "lr_find.png").is_file()


@requires_real_data
@pytest.mark.slow
def test_a_small_real_data_run(tmp_path):
    run = cnnlab.train(
        epochs=2, train_size=5000, valid_size=1000, ema=0, out=str(tmp_path / "real"), quiet=True
    )
    assert run.summary["test_accuracy"] > 0.75
    assert run.predict(cnnlab.load_data().test_images[:3])[0]["top"]
    json.dumps(run.evaluate())  # plain, serialisable numbers


def test_numpy_scalars_and_paths_are_plain_options(synthetic_dir, tmp_path):
    run = cnnlab.train(
        epochs=np.int64(1),
        train_size=np.int64(200),
        valid_size=50,
        batch_size=50,
        lr=np.float32(0.01),
        data_dir=synthetic_dir,
        out=tmp_path / "np",
        quiet=True,
    )
    assert (
        run.config.epochs == 1
        and type(run.config.train_size) is int
        and run.config.data_dir == str(synthetic_dir)
    )


def test_resume_with_options_says_what_the_cli_says_in_pythons_words(api_run, capsys):
    with pytest.raises(cnnlab.ConfigError) as caught:
        cnnlab.train(resume=api_run.path, lr=0.5, batch_size=10)
    assert main(["train", "--resume", str(api_run.path), "--lr", "0.5", "--batch-size", "10"]) == 2
    cli = capsys.readouterr().err.strip()
    assert cli.endswith("drop the other options (--lr, --batch-size)")
    assert str(caught.value) == (
        "resume= continues a run as configured (and epochs= trains it further); drop the other "
        "options (lr=, batch_size=)"
    )
    with pytest.raises(cnnlab.ConfigError, match=r"drop the other options \(lr=, config=\)$"):
        cnnlab.train(resume=api_run.path, lr=0.5, config=api_run.path / "config.json")


def test_rerunning_a_saved_config_gets_a_new_directory_as_the_command_does(api_run, tmp_path, monkeypatch):
    """config.json records the run's own ``out``: a rerun of it trains in a new directory (under
    ./runs), leaving the saved run as it was, rather than being refused as "not empty"."""
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in api_run.path.iterdir())
    rerun = cnnlab.train(config=api_run.path / "config.json", quiet=True)
    assert rerun.path.resolve().parent == tmp_path / "runs"
    assert rerun.config == dataclasses.replace(api_run.config, out=None)  # the same run, elsewhere
    assert sorted(p.name for p in api_run.path.iterdir()) == before


def test_predict_refuses_images_scaled_to_one(api_run):
    with pytest.raises(cnnlab.ConfigError, match="multiply them by 255"):
        api_run.predict(np.full((28, 28), 0.5, np.float32))


def test_history_falls_back_to_the_checkpoint(api_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(api_run.path, copy)
    (copy / "metrics.csv").unlink()
    assert [r["epoch"] for r in cnnlab.load_run(copy).history] == [1, 2]


def test_summary_prints_exactly_what_the_cli_prints(capsys):
    assert main(["summary", "seed", "--backend", "numpy"]) == 0
    assert capsys.readouterr().out == str(cnnlab.summary("seed", backend="numpy")) + "\n"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input=[[float("nan"), 1.0], [1.0, 1.0]]), "input= must hold finite numbers"),
        (dict(input=[1.0, 2.0, 3.0]), "input= must be a non-empty 2-D or 3-D array"),
        (dict(input=[[1.0, 2.0], [3.0]]), "input= must be a rectangular nested list"),
        (dict(kernel="abc"), "kernel= must be a rectangular nested list"),
    ],
)
def test_convolve_names_the_bad_argument(kwargs, message):
    with pytest.raises(cnnlab.ConfigError, match=message):
        cnnlab.convolve(**kwargs)
