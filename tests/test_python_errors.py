"""In Python, cnnlab's messages name keyword arguments and Python calls, its own frames stay out of
the traceback, and other libraries' habits (learning_rate=, verbose=, 'sgd,adam') get a hint."""

import traceback
from pathlib import Path

import pytest

import cnnlab
from cnnlab.cli import main
from tests.test_resume import diverge_in_epoch

SMALL = dict(train_size=300, valid_size=100, batch_size=50, precision="32", quiet=True)
SRC = Path(cnnlab.__file__).parent


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(learning_rate=0.1), "unknown option learning_rate=; did you mean lr=?"),
        (dict(num_epochs=3), "unknown option num_epochs=; did you mean epochs=?"),
        (dict(verbose=1), "unknown option verbose=; progress shows by default; quiet=True hides it"),
        (dict(shuffle=False), "unknown option shuffle=; the training images are always shuffled"),
        (dict(validation_split=0.1), "unknown option validation_split=; did you mean valid_size=? It counts"),
        (dict(colour="red"), "unknown option colour=; did you mean color=?"),
        (dict(nesterov=True), "unknown option nesterov=; cnnlab.options() lists them"),
    ],
)
def test_other_libraries_names_get_a_hint(options, message):
    with pytest.raises(cnnlab.ConfigError) as caught:
        cnnlab.train(**options)
    assert str(caught.value).startswith(message)


def test_a_comma_string_is_refused_with_the_list_to_write():
    with pytest.raises(cnnlab.ConfigError, match=r"write optimizers=\['sgd', 'adam'\]. Received: 'sgd,adam'"):
        cnnlab.compare("sgd,adam")
    with pytest.raises(cnnlab.ConfigError, match=r"write lrs=\[0.1, 0.01\]"):
        cnnlab.compare(["sgd"], lrs="0.1,0.01")
    with pytest.raises(cnnlab.ConfigError, match="callbacks= is taken by cnnlab.train only"):
        cnnlab.compare(["sgd"], callbacks=[print])
    with pytest.raises(
        cnnlab.ConfigError, match="optimizers= takes names from sgd, adam, adamw. Received: nadam"
    ):
        cnnlab.compare("nadam")  # one name alone is a list of one


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: cnnlab.train(lr=-1), "lr= must be a positive number"),
        (
            lambda: cnnlab.train(train_size=59000, valid_size=2000),
            "train_size=59000 + valid_size=2000 must fit in",
        ),
        (lambda: cnnlab.train(backend="numpy", model="vgg-mini", compile=True), "compile= is not supported"),
        (lambda: cnnlab.train(width=3), "width= applies to vgg-mini, resnet-mini only; drop it for model="),
        (lambda: cnnlab.train(config="/nowhere/config.json"), "config='/nowhere/config.json': no such file"),
        (lambda: cnnlab.train(preset="fastest"), "preset= must be one of"),
        (lambda: cnnlab.lr_find(start_lr=1, end_lr=0.1), "start_lr= must be > 0 and below end_lr="),
        (lambda: cnnlab.compare(["sgd"], seeds=0), "seeds= must be a whole number from 1 to 1000"),
        (lambda: cnnlab.convolve(padding=99), "padding=: the padding is at most 32"),
        (lambda: cnnlab.convolve([[1.0] * 20] * 20).animate(), "animate() draws a padded input of at most"),
    ],
)
def test_messages_name_keyword_arguments(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cnnlab.CnnlabError) as caught:
        call()
    assert message in str(caught.value) and "--" not in str(caught.value)


def test_the_command_line_keeps_its_own_words(tmp_path, capsys):
    with pytest.raises(cnnlab.ConfigError):
        cnnlab.train(lr=-1)
    assert main(["train", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--lr must be a positive number" in capsys.readouterr().err


def test_an_error_is_raised_from_cnnlabs_edge_with_its_frames_hidden(tmp_path):
    with pytest.raises(cnnlab.ConfigError) as caught:
        cnnlab.train(lr=-1, out=str(tmp_path / "x"))
    error = caught.value
    assert error.__cause__ is None and error.__suppress_context__
    frames = [
        f for f, _ in traceback.walk_tb(error.__traceback__) if Path(f.f_code.co_filename).is_relative_to(SRC)
    ]
    assert len(frames) == 1 and frames[0].f_code.co_filename.endswith("api/edge.py")
    assert frames[0].f_locals.get("__tracebackhide__") is True  # IPython and pytest leave it out


def test_an_interrupt_says_the_python_call_that_continues(synthetic_dir, tmp_path):
    def interrupt(state):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(cnnlab.InterruptedRun) as caught:
        cnnlab.train(
            "convnet", epochs=2, callbacks=interrupt, data_dir=str(synthetic_dir), out=str(out), **SMALL
        )
    assert (
        str(caught.value)
        == f"interrupted; epoch 1 is the last saved. Continue with: cnnlab.train(resume='{out}')"
    )


def test_the_diverged_message_says_one_consistent_thing(synthetic_dir, tmp_path, monkeypatch):
    first = tmp_path / "first"
    diverge_in_epoch(monkeypatch, epoch=1, after_batches=0)
    with pytest.raises(cnnlab.DivergedError) as caught:
        cnnlab.train("convnet", epochs=2, data_dir=str(synthetic_dir), out=str(first), **SMALL)
    assert str(caught.value) == (
        "training diverged: the loss became nan in epoch 1; lower lr=; "
        f"nothing was saved, so {first} was removed"
    )
    assert (caught.value.epoch, caught.value.removed) == (1, first)
    assert not first.exists()
    later = tmp_path / "later"
    monkeypatch.undo()
    diverge_in_epoch(monkeypatch, epoch=2, after_batches=0)
    with pytest.raises(cnnlab.DivergedError) as caught:
        cnnlab.train("convnet", epochs=3, data_dir=str(synthetic_dir), out=str(later), **SMALL)
    assert (
        str(caught.value)
        == "training diverged: the loss became nan in epoch 2; lower lr=. epoch 1 is the last saved."
    )
    assert (caught.value.epoch, caught.value.epochs_saved, caught.value.removed) == (2, 1, None)
