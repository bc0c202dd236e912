"""Training a finished run further (``cnnlab train --resume RUN --epochs N``, ``cnnlab.train(resume=RUN,
epochs=N)``): the same directory, the schedule stretched over the new length and not restarted, the
history extended and the change recorded; and the lesson preset."""

import json
import shutil

import pytest

import cnnlab
from cnnlab.cli import main
from cnnlab.training.schedules import onecycle

SMALL = dict(train_size=300, valid_size=100, batch_size=50, precision="32", quiet=True)
STEPS = 300 // 50  # per epoch


@pytest.fixture(scope="module")
def finished(synthetic_dir, tmp_path_factory):
    """A one-cycle run of 2 epochs, finished; copy it to change it."""
    out = tmp_path_factory.mktemp("further") / "run"
    return cnnlab.train("convnet", epochs=2, data_dir=str(synthetic_dir), out=str(out), **SMALL).path


def copy_of(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_train_further_continues_in_place_with_the_schedule_stretched(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    before = cnnlab.load_run(run).history
    longer = cnnlab.train(resume=run, epochs=4, quiet=False)
    said = capsys.readouterr().out
    assert longer.path == run and [r["epoch"] for r in longer.history] == [1, 2, 3, 4]
    assert longer.history[:2] == before  # the history is extended, never rewritten
    assert longer.config.epochs == 4 and longer.summary["epochs"] == 4
    # Epoch 3's rate is the one-cycle schedule planned for 4 epochs at the step the run reached: its
    # annealing stretched, not a second warm-up (which would start at lr / 25).
    config = longer.config
    stretched = config.lr * onecycle(2 * STEPS, 4 * STEPS, config.pct_start)
    assert longer.history[2]["lr"] == pytest.approx(stretched, rel=1e-6)
    ended_at = config.lr * onecycle(
        2 * STEPS - 1, 2 * STEPS, config.pct_start
    )  # the 2-epoch plan's last step
    assert longer.history[2]["lr"] > 10 * ended_at and stretched != pytest.approx(config.lr / 25)
    [record] = json.loads((run / "trained_further.json").read_text())
    assert (record["from_epochs"], record["to_epochs"], record["epochs_done"]) == (2, 4, 2)
    assert record["next_lr"] == pytest.approx(stretched) and record["test_accuracy_before"] is not None
    assert "one-cycle schedule is stretched over 4 epochs, not restarted" in said
    assert f"epoch 3 starts at lr {stretched:.2e}" in said


def test_the_command_line_trains_further_too(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3
    assert main(["train", "--resume", str(run)]) == 0  # finished again: nothing to do, and how to go on
    err = capsys.readouterr().err
    assert f"nothing to resume. To train it further: cnnlab train --resume {run} --epochs 4" in err


def test_a_finished_run_resumed_in_python_is_returned_with_the_way_on(finished, capsys):
    same = cnnlab.train(resume=finished, quiet=False)
    assert same.path == finished and len(same.history) == 2
    assert f"To train it further: cnnlab.train(resume='{finished}', epochs=3)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "epochs, message",
    [
        (1, "epochs= 1: .* has trained 2 epochs already; to train it further, ask for more, e.g. "),
        (0, "epochs= must be a whole number from 1 to 10000. Received: 0"),
        ("4", "epochs= must be a whole number from 1 to 10000. Received: '4'"),
    ],
)
def test_too_few_epochs_is_one_line(finished, epochs, message):
    with pytest.raises(cnnlab.ConfigError, match=message):
        cnnlab.train(resume=finished, epochs=epochs)
    assert not (finished / "trained_further.json").exists()


def test_stopped_before_the_first_new_epoch_it_resumes_to_the_new_length(finished, tmp_path):
    """Training further records the change and writes config.json before the first new epoch; a run
    stopped there (its checkpoint still says 2 epochs) resumes to the new length."""
    run = copy_of(finished, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 3}))
    with pytest.raises(cnnlab.RunDirError, match="saved with a different config"):
        cnnlab.train(resume=run)  # edited by hand: refused, as before
    (run / "trained_further.json").write_text(json.dumps([{"from_epochs": 2, "to_epochs": 3}]))
    (run / "summary.json").unlink()
    assert [r["epoch"] for r in cnnlab.train(resume=run).history] == [1, 2, 3]


def test_an_early_stopped_run_is_not_trained_further(early_stopped_run):
    run, _ = early_stopped_run  # stopped by patience 2 after epoch 3 of 8
    with pytest.raises(cnnlab.ConfigError, match="stopped early: no lower validation loss for 2 epochs"):
        cnnlab.train(resume=run, epochs=10)
    assert not (run / "trained_further.json").exists()


def test_early_stopping_is_patience_by_keras_name(synthetic_dir, tmp_path):
    with pytest.raises(cnnlab.ConfigError, match="early_stopping= is another name for patience="):
        cnnlab.train(early_stopping=2, patience=3)
    with pytest.raises(cnnlab.ConfigError, match="patience= must be a whole number"):
        cnnlab.train(early_stopping=True, out=str(tmp_path / "x"))
    run = cnnlab.train(
        "convnet", epochs=1, early_stopping=3, data_dir=str(synthetic_dir), out=str(tmp_path / "r"), **SMALL
    )
    assert run.config.patience == 3 and run.summary["early_stopping"]["patience"] == 3


def test_the_lesson_preset_is_plain_float32_and_deterministic(synthetic_dir, tmp_path):
    from cnnlab.training.compare import make_plan
    from cnnlab.training.config import resolve

    lesson = resolve({"preset": "lesson"})
    assert (lesson.model, lesson.optimizer, lesson.lr, lesson.betas) == (
        "convnet",
        "adam",
        1e-3,
        (0.9, 0.999),
    )
    assert (lesson.schedule, lesson.label_smoothing, lesson.ema, lesson.whiten) == (
        "constant",
        0.0,
        None,
        False,
    )
    assert (lesson.precision, lesson.device, lesson.weight_decay, lesson.warmup_epochs) == (
        "32",
        "cpu",
        0.0,
        0.0,
    )
    plan = make_plan({"preset": "lesson"}, ["sgd", "adam"], None, 3, None)
    assert plan.grid == [("sgd", 0.1), ("adam", 1e-3)]  # the notebook's two optimizers at its rates
    small = dict(train_size=200, valid_size=50, epochs=2, data_dir=str(synthetic_dir), quiet=True)
    first = cnnlab.train(preset="lesson", out=str(tmp_path / "a"), **small)
    second = cnnlab.train(preset="lesson", out=str(tmp_path / "b"), **small)
    drop = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    assert drop(first.history) == drop(second.history) and first.summary["precision"] == "32"
