"""The training loop on a scripted engine: what ``fit`` calls, in which order, what it records, and
which weights it leaves behind. Fast (no torch model, no data files), so the mutation run uses it."""

import io
import math
import re
import time
import warnings

import numpy as np
import pytest

from cnnlab.data import FASHION_MNIST
from cnnlab.data.arrays import Arrays
from cnnlab.errors import DivergedError
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import (
    FitContext,
    FitState,
    Progress,
    best_epoch,
    evaluate,
    fit,
    format_row,
    should_stop,
    train_one_epoch,
)

FASHION = FASHION_MNIST.dataset


def logits_with_loss(loss: float, labels: np.ndarray) -> np.ndarray:
    """(N, 10) logits whose mean cross-entropy against ``labels`` is ``loss``, every row right:
    the true class gets a, the nine others 0, and -log(e^a / (e^a + 9)) = loss."""
    a = math.log(9) - math.log(math.expm1(loss))
    out = np.zeros((len(labels), 10), np.float32)
    out[np.arange(len(labels)), labels] = a
    return out


class ScriptedEngine:
    """An Engine whose "weights" are the number of the epoch that trained them: after epoch e the
    validation loss is ``valid_losses[e - 1]``. It records every call the loop makes."""

    backend, precision = "scripted", "32"

    def __init__(self, config: TrainConfig, valid_losses, train_losses=None, lr_of_epoch=None):
        self.config = config
        self.valid_losses = list(valid_losses)
        self.train_losses = train_losses or [1.0] * len(self.valid_losses)
        self.lr_of_epoch = lr_of_epoch or (lambda epoch: 0.1 / epoch)
        self.weights_of = 0  # the epoch whose training produced the current weights
        self.best: int | None = None
        self.epoch = 0
        self.calls: list = []
        self.batches: list[np.ndarray] = []
        self._lr = float("nan")

    @property
    def lr(self) -> float:
        return self._lr

    def to_native(self, x):
        return np.asarray(x)

    def to_host(self, values):
        self.calls.append(("to_host", len(values)))
        return [float(v) for v in values]

    def start_epoch(self, epoch: int) -> None:
        self.calls.append(("start_epoch", epoch))
        self.epoch, self._lr = epoch, self.lr_of_epoch(epoch)

    def train_batch(self, x, y):
        self.batches.append(np.asarray(x).copy())
        self.weights_of = self.epoch
        loss = self.train_losses[self.epoch - 1]
        return loss * len(y), int((y % 2 == 0).sum())  # "right" on the even labels

    def logits(self, x):
        labels = x[:, 0, 0].astype(np.int64)  # each fake image carries its label in pixel (0, 0)
        return logits_with_loss(self.valid_losses[self.weights_of - 1], labels)

    def remember_best(self) -> None:
        self.calls.append(("remember_best", self.weights_of))
        self.best = self.weights_of

    def restore_best(self) -> None:
        self.calls.append(("restore_best", self.best))
        if self.best is not None:
            self.weights_of = self.best


def arrays(n_train=10, n_valid=4, n_test=6) -> Arrays:
    def part(n, offset):
        y = (np.arange(n) + offset) % 10
        x = np.zeros((n, 28, 28), np.uint8)
        x[:, 0, 0] = y
        x[:, 1, 1] = np.arange(n)  # an id, to follow each image through the batches
        return x, y.astype(np.int64)

    (tx, ty), (vx, vy), (sx, sy) = part(n_train, 0), part(n_valid, 3), part(n_test, 7)
    return Arrays(tx, ty, vx, vy, sx, sy)


def run_fit(valid_losses, state=None, **options):
    config = TrainConfig(**{"epochs": len(valid_losses), "batch_size": 4, **options})
    engine = ScriptedEngine(config, valid_losses)
    saved = []
    on_epoch_end = lambda s: saved.append([dict(r) for r in s.history])
    state = fit(FitContext(config, engine, arrays()), on_epoch_end, Progress(1, 1, enabled=False), state)
    return state, engine, saved


def test_fit_trains_every_epoch_in_order_and_saves_after_each():
    state, engine, saved = run_fit([0.9, 0.8, 0.7])
    assert [r["epoch"] for r in state.history] == [1, 2, 3] and state.epochs_done == 3
    assert [len(h) for h in saved] == [1, 2, 3]  # on_epoch_end sees each new row as it is added
    # One read of the epoch's sums from the engine per epoch (a device sync on a GPU), none per batch.
    assert engine.calls == [("start_epoch", 1), ("to_host", 2)] + [("start_epoch", 2), ("to_host", 2)] + [
        ("start_epoch", 3),
        ("to_host", 2),
    ]
    assert not state.stopped_early and engine.weights_of == 3  # no patience: the last weights stay
    for row, loss in zip(state.history, [0.9, 0.8, 0.7]):
        assert row["valid_loss"] == pytest.approx(loss, rel=1e-6) and row["valid_accuracy"] == 1.0
        assert row["train_loss"] == 1.0 and row["train_accuracy"] == 0.5
        assert row["lr"] == pytest.approx(0.1 / row["epoch"])  # the rate the epoch started with
        assert "test_accuracy" not in row
    assert list(state.history[0]) == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_accuracy",
        "lr",
        "seconds",
    ]


class RecordingWorld:
    """A one-process world that records what the loop asks of it."""

    size, rank, distributed = 1, 0, False

    def __init__(self):
        self.calls = []

    def shard(self, batch):
        self.calls.append(("shard", len(batch)))
        return batch

    def sum(self, *values):
        self.calls.append(("sum", len(values)))
        return values


class RecordingProgress:
    def __init__(self):
        self.calls = []

    def start_epoch(self, epoch):
        self.calls.append(("start", epoch))
        return lambda n: self.calls.append(("images", n))

    def end_epoch(self, row):
        self.calls.append(("end", row["epoch"]))


def test_fit_shares_batches_through_its_world_and_reports_each_epoch_to_the_progress():
    config = TrainConfig(epochs=2, batch_size=4)
    world, progress = RecordingWorld(), RecordingProgress()
    fit(FitContext(config, ScriptedEngine(config, [0.9, 0.8]), arrays(), world), lambda s: None, progress)
    assert world.calls == [("shard", 4), ("shard", 4), ("shard", 2), ("sum", 2)] * 2  # summed once an epoch
    epoch = [("images", 4), ("images", 4), ("images", 2)]
    assert progress.calls == [("start", 1), *epoch, ("end", 1), ("start", 2), *epoch, ("end", 2)]


def test_each_epoch_sees_every_image_once_in_its_seeded_order():
    from cnnlab.training.batches import epoch_order

    _, engine, _ = run_fit([0.9, 0.8], seed=7)
    seen = np.concatenate([b[:, 1, 1] for b in engine.batches])
    assert [len(b) for b in engine.batches] == [4, 4, 2] * 2
    expected = np.concatenate([epoch_order(10, 7, 1), epoch_order(10, 7, 2)])
    assert np.array_equal(seen, expected)


@pytest.mark.parametrize(
    "n, batch_size, world_size, sizes",
    [
        (10, 4, 1, [4, 4, 2]),
        (9, 4, 1, [4, 5]),  # a last batch of one image joins the one before
        (1, 4, 1, [1]),  # unless it is the only one
        (11, 2, 2, [4, 7]),  # per rank: a last global batch of 3 would leave a rank one image
        (8, 4, 1, [4, 4]),
    ],
)
def test_global_batches_never_end_with_too_few_images_per_rank(n, batch_size, world_size, sizes):
    from cnnlab.training.batches import global_batches, steps_per_epoch

    order = np.random.default_rng(0).permutation(n)
    batches = list(global_batches(order, batch_size, world_size))
    assert [len(b) for b in batches] == sizes
    assert np.array_equal(np.concatenate(batches), order)  # every image once, in order
    assert steps_per_epoch(n, batch_size, world_size) == len(sizes)


def test_early_stopping_stops_after_patience_and_restores_the_best_epochs_weights():
    state, engine, saved = run_fit([0.9, 0.5, 0.7, 0.6, 0.1, 0.1], patience=2)
    assert [r["epoch"] for r in state.history] == [1, 2, 3, 4]  # no new low in 3 and 4
    assert state.stopped_early and len(saved) == 4
    assert engine.weights_of == 2  # the weights fit leaves are the best epoch's, not the last's
    assert [call for call in engine.calls if call[0] != "to_host"] == [
        ("start_epoch", 1),
        ("remember_best", 1),
        ("start_epoch", 2),
        ("remember_best", 2),
        ("start_epoch", 3),
        ("start_epoch", 4),
        ("restore_best", 2),
    ]


def test_early_stopping_that_never_triggers_still_restores_the_best_weights():
    state, engine, _ = run_fit([0.9, 0.5, 0.7], patience=2)
    assert state.epochs_done == 3 and not state.stopped_early
    assert engine.weights_of == 2 and engine.calls[-1] == ("restore_best", 2)


def test_a_resumed_fit_continues_after_the_saved_epochs():
    first, _, _ = run_fit([0.9, 0.5, 0.7, 0.6, 0.1], patience=2, epochs=2)
    state, engine, saved = run_fit([0.9, 0.5, 0.7, 0.6, 0.1], state=FitState(first.history), patience=2)
    assert engine.calls[0] == ("start_epoch", 3) and [r["epoch"] for r in state.history] == [1, 2, 3, 4]
    assert len(saved) == 2 and state.stopped_early  # stopped where an uninterrupted run stops
    # A run resumed after its stopping epoch trains nothing more.
    again, engine, saved = run_fit([0.9, 0.5, 0.7, 0.6, 0.1], state=FitState(state.history), patience=2)
    assert saved == [] and again.epochs_done == 4 and again.stopped_early
    assert ("start_epoch", 5) not in engine.calls


def test_test_accuracy_every_epoch_when_asked():
    state, _, _ = run_fit([0.9, 0.8], eval_test_every_epoch=True)
    assert [r["test_accuracy"] for r in state.history] == [1.0, 1.0]
    assert list(state.history[0])[-2:] == ["test_accuracy", "seconds"]


def test_seconds_count_from_the_clock_start_plus_the_time_before_a_resume():
    config = TrainConfig(epochs=2, batch_size=4)
    ctx = FitContext(config, ScriptedEngine(config, [0.9, 0.8]), arrays(), seconds_before=5.0)
    ctx.clock_start = time.perf_counter() - 100.0
    assert 105.0 <= ctx.seconds() < 130.0
    state = fit(ctx, lambda s: None, Progress(1, 1, enabled=False))
    first, second = (r["seconds"] for r in state.history)
    assert 105.0 <= first <= second < 130.0


def test_train_one_epoch_returns_the_mean_loss_and_accuracy_and_counts_every_image():
    config = TrainConfig(batch_size=4)
    engine = ScriptedEngine(config, [0.5], train_losses=[2.5])
    engine.start_epoch(1)
    counted = []
    metrics = train_one_epoch(engine, arrays(n_train=10), np.arange(10), counted.append)
    assert metrics == {"train_loss": 2.5, "train_accuracy": 0.5}
    assert counted == [4, 4, 2]


class Diverging(ScriptedEngine):
    batches_before_nan = 1

    def train_batch(self, x, y):
        loss, correct = super().train_batch(x, y)
        return (float("nan") if len(self.batches) == self.batches_before_nan + 1 else loss), correct


def test_a_non_finite_loss_raises_at_the_end_of_the_epoch_before_it_is_saved():
    config = TrainConfig(batch_size=4)
    engine = Diverging(config, [0.5])
    engine.start_epoch(1)
    counted = []
    # The sums stay on the device until the epoch ends (no sync per step), so the check comes then.
    message = "training diverged: the loss became nan in this epoch; lower --lr"
    with pytest.raises(DivergedError, match=re.escape(message) + "$"):
        train_one_epoch(engine, arrays(), np.arange(10), counted.append)
    assert counted == [4, 4, 2]  # found when the epoch's sums are read, at its end
    saved = []
    # fit names the epoch, which train_one_epoch does not know.
    config = TrainConfig(batch_size=4, epochs=3)
    engine = Diverging(config, [0.5, 0.4, 0.3])
    engine.batches_before_nan = 5  # three batches an epoch: NaN in the last of epoch 2
    with pytest.raises(DivergedError) as exc:
        fit(FitContext(config, engine, arrays()), saved.append, Progress(1, 1, False))
    assert str(exc.value) == message.replace("in this epoch", "in epoch 2")
    assert math.isnan(exc.value.loss) and exc.value.epoch == 2 and exc.value.epochs_saved is None
    assert len(saved) == 1  # epoch 1, and nothing of epoch 2


def test_evaluate_gives_the_mean_cross_entropy_and_the_accuracy():
    y = np.array([0, 1, 0, 0])
    probabilities = np.full((4, 10), 1e-30)
    probabilities[:, :2] = [[0.5, 0.5], [0.25, 0.75], [0.5, 0.5], [0.25, 0.75]]

    class Fixed:
        dataset = FASHION

        def logits(self, x):
            return np.log(probabilities).astype(np.float32)

    result = evaluate(Fixed(), None, y)
    assert result.accuracy == 0.75  # the last row's argmax (1) is not its label (0)
    expected = np.mean([np.log(2), -np.log(0.75), np.log(2), -np.log(0.25)])
    assert result.loss == pytest.approx(expected, rel=1e-6)
    assert result.logits.dtype == np.float64 and result.logits.shape == (4, 10)
    empty = evaluate(Fixed(), None, np.zeros(0, np.int64))
    assert math.isnan(empty.loss) and math.isnan(empty.accuracy) and empty.logits.shape == (0, 10)


def test_overflowing_logits_give_a_nan_or_finite_loss_without_numpy_warnings():
    """An engine whose logits overflowed is reported by its loss (NaN), not by RuntimeWarnings."""

    class Fixed:
        def __init__(self, logits):
            self.value = np.array(logits, np.float64)

        def logits(self, x):
            return self.value

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(evaluate(Fixed([[np.inf] + [0.0] * 9]), None, np.array([0])).loss)  # inf - inf
        huge = evaluate(Fixed([[1e308, -1e308] + [0.0] * 8]), None, np.array([0]))  # -2e308 overflows
        assert huge.loss == 0.0 and huge.accuracy == 1.0


def test_best_epoch_and_should_stop():
    rows = lambda losses: [{"epoch": i + 1, "valid_loss": v} for i, v in enumerate(losses)]
    assert best_epoch(rows([0.5, 0.4, 0.45, 0.4])) == 2  # a tie is not an improvement
    assert best_epoch(rows([0.5, float("nan"), 0.45])) == 3  # an overflowed epoch is never the best
    assert best_epoch(rows([float("nan"), 0.6])) == 2  # NaN compares false with everything: not a key
    assert best_epoch(rows([float("inf"), 0.6])) == 2
    assert best_epoch(rows([float("nan"), float("nan")])) == 1
    assert not should_stop(rows([0.5, 0.4, 0.45]), patience=2)
    assert should_stop(rows([0.5, 0.4, 0.45, 0.41]), patience=2)
    assert should_stop(rows([0.5, 0.6]), patience=1)
    assert not should_stop(rows([0.5, 0.4, 0.45, 0.3]), patience=2)
    assert not should_stop(rows([0.5, 0.6, 0.7]), patience=None)
    assert not should_stop([], patience=1)


ROW = {
    "epoch": 3,
    "train_loss": 0.12345,
    "train_accuracy": 0.9512,
    "valid_loss": 0.5,
    "valid_accuracy": 0.875,
    "lr": 0.00125,
    "seconds": 12.34,
}
LINE = "epoch 3  train_loss 0.1235  train_acc 95.12%  valid_loss 0.5000  valid_acc 87.50%  lr 1.25e-03  12.3s"


def test_format_row_is_one_line_with_every_metric():
    assert format_row(ROW) == LINE
    assert format_row({**ROW, "test_accuracy": 0.5}) == LINE.replace("  12.3s", "  test_acc 50.00%  12.3s")


class Terminal(io.StringIO):
    """A terminal that counts how often it is flushed."""

    flushes = 0

    def isatty(self):
        return True

    def flush(self):
        self.flushes += 1


def test_progress_prints_one_line_per_epoch_off_a_terminal_and_a_bar_on_one():
    plain = Terminal()
    plain.isatty = lambda: False  # a log file or a pipe
    progress = Progress(3, 10, stream=plain)
    assert not progress.bars
    progress.start_epoch(3)(10)
    flushes = plain.flushes
    progress.end_epoch(ROW)
    assert plain.getvalue() == LINE + "\n"
    assert plain.flushes > flushes  # each line reaches a log as the epoch ends, not when a buffer fills

    terminal = Terminal()
    progress = Progress(3, 10, stream=terminal)
    update = progress.start_epoch(2)
    assert progress.bar.total == 10 and progress.bar.desc == "epoch 2/3"
    assert progress.bar.dynamic_ncols  # the bar follows the terminal's width as it changes
    assert terminal.getvalue() == "\repoch 2/3:   0%|          | 0/10 [00:00<?, ?img/s]"
    update(4)
    assert progress.bar.n == 4
    progress.end_epoch(ROW)
    # The bar is wiped (not left above the line), and the epoch's line is printed whole.
    assert progress.bar is None and terminal.getvalue().count("\n") == 1
    assert terminal.getvalue().endswith("\r" + LINE + "\n")

    quiet = Terminal()
    progress = Progress(3, 10, enabled=False, stream=quiet)
    progress.start_epoch(1)(10)
    progress.end_epoch(ROW)
    assert quiet.getvalue() == "" and progress.bar is None


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, bundle, raw=False):
        assert raw
        self.shown.append(bundle)


def test_progress_in_a_notebook_is_one_output_updated_in_place(monkeypatch):
    """No tqdm (its widget needs ipywidgets, else it warns; its text bar is stored refresh by refresh
    in a headless kernel): one display, created once, its content replaced, at most twice a second."""
    import IPython.display

    displays, shown = [], []

    def display(bundle, raw=False, display_id=False):
        assert raw and display_id is True
        displays.append(bundle)
        shown.append(bundle)
        return FakeHandle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    clock = [0.0]
    monkeypatch.setattr("cnnlab.training.notebook.time.monotonic", lambda: clock[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's "IProgress not found" would be one
        progress = Progress(2, 1000, stream=io.StringIO(), notebook=True)
        for epoch in (1, 2):
            update = progress.start_epoch(epoch)
            for _ in range(100):
                clock[0] += 0.01  # 100 batches in one second
                update(10)
            progress.end_epoch(dict(ROW, epoch=epoch))
        progress.close()
    assert len(displays) == 1 and progress.bar is None  # one output for the whole run, and no tqdm
    texts = [b["text/plain"] for b in shown]
    assert texts[0].startswith("epoch 1/2: 0%") and texts[-1] == ""  # emptied when the run is over
    assert any(t.startswith("epoch 1/2: 100% (1,000 of 1,000 images") for t in texts)
    assert any(t.startswith("epoch 2/2: 100%") for t in texts)
    assert len(shown) <= 2 * (1 + 2 + 1) + 1  # per epoch: the start, ~2 a second, the end; then empty
    assert all("<progress" in b["text/html"] for b in shown[:-1])
