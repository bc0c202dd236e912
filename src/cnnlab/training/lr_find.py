"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's lr_find).

Train from fresh weights while the rate grows exponentially from ``start`` to ``end``; record the
loss at each step (smoothed by an exponential moving average, debiased as in Adam); stop early once
the loss explodes. The suggestion is the rate where the smoothed loss falls fastest, a common and
conservative choice (fastai's "steep" point).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cnnlab.data.arrays import Arrays
from cnnlab.training.batches import batch_slices, epoch_order
from cnnlab.training.config import TrainConfig
from cnnlab.training.engine import make_engine


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


def sweep(
    config: TrainConfig,
    arrays: Arrays,
    steps: int = 100,
    start: float = 1e-6,
    end: float = 1.0,
    smoothing: float = 0.9,
    explode: float = 4.0,
) -> Sweep:
    engine = make_engine(dataclasses.replace(config, schedule="constant"), steps_per_epoch=steps)
    x = engine.to_native(arrays.train_x)
    batches = _endless_batches(len(arrays.train_y), config)
    lrs, smoothed, raw, average, best = [], [], [], 0.0, math.inf
    for step in range(steps):
        lr = rate_at(step, steps, start, end)
        engine.set_lr(lr)
        idx = next(batches)
        loss_sum, _ = engine.train_batch(x[idx], arrays.train_y[idx])
        loss = loss_sum / len(idx)
        if not math.isfinite(loss):
            break
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (step + 1))  # debiased, as Adam's moments
        lrs.append(lr)
        smoothed.append(value)
        raw.append(loss)
        best = min(best, value)
        if value > explode * best:
            break
    return Sweep(lrs, smoothed, raw, suggest(lrs, smoothed))


def _endless_batches(n: int, config: TrainConfig):
    epoch = 1
    while True:
        yield from batch_slices(epoch_order(n, config.seed, epoch), config.batch_size)
        epoch += 1


def plot_sweep(result: Sweep, path, title: str = "") -> None:
    from cnnlab.report.curves import plt
    from cnnlab.runs.layout import write_atomic

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(result.lrs, result.raw_losses, color="tab:blue", alpha=0.25, lw=1, label="loss per step")
    ax.plot(result.lrs, result.losses, color="tab:blue", lw=2, label="smoothed loss")
    if result.suggestion is not None:
        ax.axvline(
            result.suggestion,
            color="tab:red",
            ls="--",
            lw=1.5,
            label=f"suggested lr {result.suggestion:.2g} (steepest descent)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (cross-entropy)")
    top = min(max(result.losses[: max(1, len(result.losses) // 3)]) * 1.3, max(result.raw_losses))
    ax.set_ylim(min(result.raw_losses) * 0.9, top)
    ax.set_title(title or "Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
