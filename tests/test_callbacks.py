"""``cnnlab.train(callbacks=[...])``: called after each saved epoch with its state, in the main process
only; ``run_state.stop_training = True`` ends the run as a finished one; an exception stops it with
every epoch saved and reaches the caller unchanged."""

import json

import pytest

import cnnlab
from cnnlab.training.callbacks import Callbacks, RunState
from cnnlab.training.distributed import World
from cnnlab.training.loop import FitState

SMALL = dict(train_size=300, valid_size=100, batch_size=50, precision="32", quiet=True)


class StopAt:
    """Keras-style: an object with on_epoch_end."""

    def __init__(self, epoch):
        self.epoch, self.seen = epoch, []

    def on_epoch_end(self, state: RunState):
        self.seen.append(state)
        if state.epoch == self.epoch:
            state.stop_training = True


def test_a_callback_sees_each_epoch_and_may_stop_the_run(synthetic_dir, tmp_path):
    stop, lines = StopAt(2), []
    run = cnnlab.train(
        "convnet",
        epochs=4,
        callbacks=[stop, lambda state: lines.append(f"{state.epoch}: {state.metrics['valid_accuracy']:.2f}")],
        data_dir=str(synthetic_dir),
        out=str(tmp_path / "run"),
        **SMALL,
    )
    assert [s.epoch for s in stop.seen] == [1, 2] and len(lines) == 2
    state = stop.seen[-1]
    assert state.epochs == 4 and state.path == run.path and len(state.history) == 2
    assert state.metrics == pytest.approx(run.history[1], rel=1e-5) and state.config.epochs == 4
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert run.summary["epochs"] == 2 and run.summary["stopped_by_callback"] is True
    assert "early_stopping" not in run.summary  # not patience's doing
    again = cnnlab.train(resume=run.path)  # finished, by its callback: nothing to resume
    assert len(again.history) == 2
    assert len(cnnlab.train(resume=run.path, epochs=3).history) == 3  # and it can be trained further


def test_an_exception_in_a_callback_stops_the_run_with_everything_saved(synthetic_dir, tmp_path):
    class Broken(Exception):
        pass

    def broken(state):
        if state.epoch == 2:
            raise Broken("my callback's bug")

    out = tmp_path / "run"
    with pytest.raises(Broken, match="my callback's bug") as caught:
        cnnlab.train(
            "convnet", epochs=3, callbacks=broken, data_dir=str(synthetic_dir), out=str(out), **SMALL
        )
    assert any(
        f"the run stopped after epoch 2, which is saved; continue it with cnnlab.train(resume='{out}')"
        in note
        for note in getattr(caught.value, "__notes__", [])
    )
    assert (out / "checkpoint.pt").is_file() and not (out / "summary.json").exists()
    assert [r["epoch"] for r in cnnlab.load_run(out).history] == [1, 2]
    finished = cnnlab.train(resume=out)  # the lock was released; the run finishes
    assert [r["epoch"] for r in finished.history] == [1, 2, 3]


@pytest.mark.parametrize(
    "bad, message",
    [
        (5, "callbacks= takes objects with an on_epoch_end"),
        ([object()], "callbacks= takes objects with an on_epoch_end"),
        ([StopAt], "callbacks= takes instances; StopAt is a class: pass StopAt"),
    ],
)
def test_what_is_no_callback_is_refused_before_anything_runs(bad, message, tmp_path):
    with pytest.raises(cnnlab.ConfigError, match=message):
        cnnlab.train(callbacks=bad, out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_callbacks_run_in_the_main_process_only(monkeypatch, tmp_path):
    """Under torchrun, rank 1 calls no callback and stops when rank 0 says so."""
    calls = []
    told = []
    monkeypatch.setattr(
        "cnnlab.training.callbacks.distributed.broadcast", lambda stop, world: told.append(stop) or True
    )
    from cnnlab.training.config import TrainConfig

    history = [{"epoch": 1, "train_loss": 1.0, "valid_accuracy": 0.5}]
    rank1 = Callbacks([calls.append], tmp_path, TrainConfig(), World(rank=1, size=2))
    assert rank1(FitState(history)) is True and calls == [] and told == [False]
    rank0 = Callbacks([calls.append], tmp_path, TrainConfig(), World(rank=0, size=2))
    rank0(FitState(history))
    assert len(calls) == 1 and told == [False, False]


def test_the_summary_of_a_run_without_callbacks_says_nothing_of_them(synthetic_dir, tmp_path):
    run = cnnlab.train("convnet", epochs=1, data_dir=str(synthetic_dir), out=str(tmp_path / "r"), **SMALL)
    assert "stopped_by_callback" not in json.loads((run.path / "summary.json").read_text())
