"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's lr_find).

Train from fresh weights while the rate grows exponentially from ``start`` to ``end``; record the
loss at each step (smoothed by an exponential moving average, debiased as in Adam); stop early once
the loss explodes. The suggestion is the rate where the smoothed loss falls fastest, a common and
conservative choice (fastai's "steep" point).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnlab.data.arrays import Arrays, split_arrays
from cnnlab.data.dataset import Dataset
from cnnlab.data.registry import load_dataset
from cnnlab.errors import ConfigError
from cnnlab.report.sweep import plot_sweep
from cnnlab.runs import claims
from cnnlab.runs import layout as rundir
from cnnlab.training.batches import batch_slices, epoch_order
from cnnlab.training.config import TrainConfig
from cnnlab.training.engine import make_engine
from cnnlab.training.rng import exclusive


@dataclasses.dataclass
class Sweep:
    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    suggestion: float | None


def rate_at(step: int, steps: int, start: float, end: float) -> float:
    return start * (end / start) ** (step / max(1, steps - 1))


def suggest(lrs: list[float], losses: list[float]) -> float | None:
    """The rate of steepest descent of the smoothed loss against log(lr), ignoring the noisy ends."""
    if len(lrs) < 5:
        return None
    slopes = np.gradient(np.array(losses), np.log(np.array(lrs)))
    lo, hi = len(lrs) // 10, max(len(lrs) // 10 + 1, len(lrs) - len(lrs) // 20)
    return float(lrs[lo + int(np.argmin(slopes[lo:hi]))])


@dataclasses.dataclass(frozen=True)
class SweepRange:
    """The rates swept: ``steps`` optimizer steps from ``start`` to ``end``, spaced exponentially."""

    start: float = 1e-6
    end: float = 1.0
    steps: int = 100

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end) and 0 < self.start < self.end):
            raise ConfigError(
                f"--start-lr must be > 0 and below --end-lr. Received: {self.start}, {self.end}"
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 5 <= self.steps <= 100_000:
            raise ConfigError(f"--steps must be a whole number from 5 to 100000. Received: {self.steps!r}")


SMOOTHING = 0.9  # the loss's exponential moving average, as fastai smooths it
EXPLODE = 4.0  # stop once the smoothed loss is this many times its lowest


def sweep(config: TrainConfig, dataset: Dataset, arrays: Arrays, rates: SweepRange = SweepRange()) -> Sweep:
    """Train from fresh weights while the rate grows through ``rates``; the losses and a suggestion."""
    steps, start, end, smoothing = rates.steps, rates.start, rates.end, SMOOTHING
    engine = make_engine(dataclasses.replace(config, schedule="constant"), steps, dataset)
    engine.initialize(dataset, arrays.train_x)
    x, y = engine.to_native(arrays.train_x), engine.to_native(arrays.train_y)
    batches = _endless_batches(len(arrays.train_y), config)
    lrs, smoothed, raw, average, best = [], [], [], 0.0, math.inf
    for step in range(steps):
        lr = rate_at(step, steps, start, end)
        engine.set_lr(lr)
        idx = next(batches)
        loss_sum, _ = engine.train_batch(x[idx], y[idx])
        loss = engine.to_host([loss_sum])[0] / len(idx)  # a sync per step: the sweep reads every loss
        if not math.isfinite(loss):
            break
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (step + 1))  # debiased, as Adam's moments
        lrs.append(lr)
        smoothed.append(value)
        raw.append(loss)
        best = min(best, value)
        if value > EXPLODE * best:
            break
    return Sweep(lrs, smoothed, raw, suggest(lrs, smoothed))


@dataclasses.dataclass
class LrFind:
    """A finished range test: the sweep, and where its table (lr_find.csv) and plot (lr_find.png) are."""

    sweep: Sweep
    out: Path

    @property
    def suggestion(self) -> float | None:
        return self.sweep.suggestion


# What a sweep writes. A directory holding only these (and the lock) is an earlier sweep, finished or
# stopped, and a new sweep with the same --out replaces it: a sweep is a measurement, made again at will.
SWEEP_FILES = frozenset({rundir.CONFIG, rundir.LR_FIND_TABLE, "lr_find.png"})


def find_lr(
    config: TrainConfig, rates: SweepRange = SweepRange(), log: Callable[[str], None] = print
) -> LrFind:
    """The whole ``cnnlab lr-find``: a new directory (``config.out`` or runs/<timestamp>-lr-find) with
    the config, the sweep as lr_find.csv and its plot as lr_find.png. Stopped, it leaves nothing."""
    with (
        exclusive(),
        claims.claim_new_run_dir(
            config.out, "lr-find", leftovers=SWEEP_FILES, left_by="an earlier lr-find"
        ) as claimed,
    ):
        out = claimed.path
        try:
            config.save(out / rundir.CONFIG)
            dataset, images = load_dataset(
                config.dataset, config.data_dir, config.image_size, config.color, quiet=True
            )
            arrays = split_arrays(images, config.train_size, config.valid_size, config.seed)
            log(f"sweeping {rates.steps} steps from {rates.start:.1e} to {rates.end:.1e} in {out}")
            result = sweep(config, dataset, arrays, rates)
        except BaseException:
            _discard(out, claimed)
            raise
        rows = [
            {"lr": a, "loss": b, "smoothed_loss": c}
            for a, b, c in zip(result.lrs, result.raw_losses, result.losses)
        ]
        rundir.write_csv(out / rundir.LR_FIND_TABLE, ("lr", "loss", "smoothed_loss"), rows)
        title = f"Learning-rate range test: {config.model}, {config.optimizer}"
        plot_sweep(result, out / "lr_find.png", title=title)
    return LrFind(result, out)


def _discard(out: Path, claimed: claims.Claim) -> None:
    """A sweep stopped before its table was written: remove what it wrote, so nothing is left behind."""
    if not claimed.intact():
        return
    for name in SWEEP_FILES:
        (out / name).unlink(missing_ok=True)
    rundir.remove_stale_temporaries(out)
    if not any(p.name != rundir.LOCK for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)


def _endless_batches(n: int, config: TrainConfig):
    epoch = 1
    while True:
        yield from batch_slices(epoch_order(n, config.seed, epoch), config.batch_size)
        epoch += 1
