"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's lr_find).

Train from fresh weights while the rate grows exponentially from ``start`` to ``end``; record the
loss at each step (smoothed by an exponential moving average, debiased as in Adam); stop for good
once the smoothed loss passes ``STOP_FACTOR`` times its lowest value.

Every suggestion lies below the rate of the lowest smoothed loss: past it the network is being
destroyed, and a loss that drifts down again there (a dead network settling at chance, ln 10) is no
sign of learning. The rule, as fastai's ``lr_find`` suggests by default, is the "valley": the middle
of the longest stretch over which the smoothed loss keeps falling before its minimum; when that
stretch is too short to trust, the rate of the minimum divided by 10 (fastai's ``minimum``). The
sweep records which rule chose its suggestion, and the rate each rule would give.
"""

from __future__ import annotations

import dataclasses
import html
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab import fileio
from cnnlab.data.arrays import Arrays, split_arrays
from cnnlab.data.dataset import Dataset
from cnnlab.data.registry import load_dataset
from cnnlab.errors import ConfigError, option
from cnnlab.report.sweep import plot_sweep
from cnnlab.training import claims, rundir
from cnnlab.training.batches import batch_slices, epoch_order
from cnnlab.training.config import TrainConfig
from cnnlab.training.engine import make_engine
from cnnlab.training.rng import exclusive

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclasses.dataclass
class Sweep:
    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    suggestion: float | None
    rule: str | None = None  # which rule chose the suggestion: "valley" or "minimum/10"
    suggestions: dict[str, float] = dataclasses.field(default_factory=dict)  # every rule's rate

    @property
    def minimum(self) -> float | None:
        """The rate at which the smoothed loss was lowest (every suggestion lies below it)."""
        return float(self.lrs[int(np.argmin(self.losses))]) if self.losses else None


def rate_at(step: int, steps: int, start: float, end: float) -> float:
    return start * (end / start) ** (step / max(1, steps - 1))


MIN_VALLEY = 5  # points: a shorter falling stretch is noise, and minimum/10 is used instead


def suggest(lrs: list[float], losses: list[float]) -> tuple[float | None, str | None, dict[str, float]]:
    """(the suggested rate, the rule that chose it, every rule's rate) for a sweep's rates and
    smoothed losses, looking only at the points up to the lowest loss. No suggestion when the loss
    never fell (its lowest point is among the first few)."""
    if len(lrs) < MIN_VALLEY:
        return None, None, {}
    lowest = int(np.argmin(losses))
    if lowest < MIN_VALLEY - 1:
        return None, None, {}
    rates, falling = np.array(lrs[: lowest + 1]), np.array(losses[: lowest + 1])
    start, end = _longest_descent(falling)
    rules = {"minimum/10": float(lrs[lowest] / 10)}
    if end - start + 1 >= MIN_VALLEY:
        rules["valley"] = float(rates[start + (end - start) // 2])
    slopes = np.gradient(falling, np.log(rates))
    rules["steepest"] = float(rates[int(np.argmin(slopes))])
    rule = "valley" if "valley" in rules else "minimum/10"
    return rules[rule], rule, rules


def _longest_descent(losses: np.ndarray) -> tuple[int, int]:
    """(first, last) index of the longest strictly decreasing subsequence of ``losses``, as fastai's
    valley finds it (O(n^2) over at most a few thousand points)."""
    length = np.ones(len(losses), int)
    for i in range(1, len(losses)):
        earlier = np.flatnonzero(losses[:i] > losses[i])
        if earlier.size:
            length[i] = length[earlier].max() + 1
    end = int(np.argmax(length))
    return end - int(length[end]) + 1, end


@dataclasses.dataclass(frozen=True)
class SweepRange:
    """The rates swept: ``steps`` optimizer steps from ``start`` to ``end``, spaced exponentially."""

    start: float = 1e-6
    end: float = 1.0
    steps: int = 100

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end) and 0 < self.start < self.end):
            raise ConfigError(
                f"{option('start_lr')} must be > 0 and below {option('end_lr')}. "
                f"Received: {self.start}, {self.end}"
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 5 <= self.steps <= 100_000:
            raise ConfigError(
                f"{option('steps')} must be a whole number from 5 to 100000. Received: {self.steps!r}"
            )


SMOOTHING = 0.9  # the loss's exponential moving average, as fastai smooths it
# Stop once the smoothed loss is this many times its lowest. Not fastai's 4: a network killed by too
# high a rate settles at chance (ln 10 = 2.3 for ten classes), which is under 4x a lowest loss above
# 0.58, so a 4x limit can let the sweep run on past the blow-up (an example: the docs' lr-find guide).
STOP_FACTOR = 2.0


def sweep(
    config: TrainConfig, dataset: Dataset, arrays: Arrays[np.ndarray], rates: SweepRange = SweepRange()
) -> Sweep:
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
        if value > STOP_FACTOR * best:
            break
    return Sweep(lrs, smoothed, raw, *suggest(lrs, smoothed))


@dataclasses.dataclass
class LrFind:
    """A finished range test: the sweep, and where its table (lr_find.csv) and plot (lr_find.png) are."""

    sweep: Sweep
    out: Path
    title: str = "Learning-rate range test"

    @property
    def suggestion(self) -> float | None:
        """The suggested rate (``rule`` says which rule chose it), or None when the loss never fell."""
        return self.sweep.suggestion

    @property
    def rule(self) -> str | None:
        """The rule that chose the suggestion, ``"valley"`` or ``"minimum/10"``; None: no fall seen."""
        return self.sweep.rule

    def plot(self) -> Figure:
        """The loss against the rate (log axis), the lowest loss and the suggestion marked."""
        from cnnlab.report.sweep import sweep_figure

        return sweep_figure(self.sweep, self.title)

    def __str__(self) -> str:
        return describe(self.sweep)

    def __repr__(self) -> str:
        return f"LrFind({describe(self.sweep)!r}, out={str(self.out)!r})"

    def _repr_html_(self) -> str:
        from cnnlab.report.display import image_tag, note

        return (
            f"<div><b>{html.escape(self.title)}</b><br>{html.escape(describe(self.sweep))}"
            f"{note(f'saved in {self.out}')}{image_tag(self.plot(), 'loss against learning rate')}</div>"
        )


def describe(sweep: Sweep) -> str:
    """What a sweep found, in two sentences."""
    swept = (
        f"swept {len(sweep.lrs)} steps from {sweep.lrs[0]:.1e} to {sweep.lrs[-1]:.1e}"
        if sweep.lrs
        else "swept nothing"
    )
    if sweep.suggestion is None:
        return f"{swept}; the loss never fell, so there is no suggestion: raise end_lr or steps."
    return (
        f"{swept}; the smoothed loss was lowest at {sweep.minimum:.2g}. "
        f"Suggested learning rate: {sweep.suggestion:.2g} (rule: {sweep.rule})."
    )


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
        fileio.write_csv(out / rundir.LR_FIND_TABLE, ("lr", "loss", "smoothed_loss"), rows)
        title = f"Learning-rate range test: {config.model}, {config.optimizer}"
        plot_sweep(result, out / "lr_find.png", title=title)
    return LrFind(result, out, title)


def _discard(out: Path, claimed: claims.Claim) -> None:
    """A sweep stopped before its table was written: remove what it wrote, so nothing is left behind."""
    if not claimed.intact():
        return
    for name in SWEEP_FILES:
        (out / name).unlink(missing_ok=True)
    fileio.remove_stale_temporaries(out)
    if not any(p.name != rundir.LOCK for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)


def _endless_batches(n: int, config: TrainConfig):
    epoch = 1
    while True:
        yield from batch_slices(epoch_order(n, config.seed, epoch), config.batch_size)
        epoch += 1
