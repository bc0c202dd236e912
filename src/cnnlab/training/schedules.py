"""Learning-rate schedules as pure functions: (step, total_steps) -> multiplier of the base rate.

Pure functions serve both backends: torch wraps them in LambdaLR, the NumPy engine sets
``optimizer.lr`` from them, and tests check them without building an optimizer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Protocol

Schedule = Callable[[int, int], float]


def constant(step: int, total: int) -> float:
    return 1.0


def step_decay(step: int, total: int, every: int, gamma: float = 0.1) -> float:
    """Multiply by ``gamma`` every ``every`` steps (torch's StepLR)."""
    return gamma ** (step // max(1, every))


def cosine(step: int, total: int, floor: float = 0.0) -> float:
    """Cosine annealing from 1 to ``floor`` over the run (SGDR without restarts, Loshchilov & Hutter 2016)."""
    return _cos_between(1.0, floor, min(1.0, step / max(1, total)))


def onecycle(
    step: int, total: int, pct_start: float = 0.3, div: float = 25.0, final_div: float = 1e4
) -> float:
    """Cosine warm-up from lr/div to lr over ``pct_start`` of the run, then cosine down to lr/(div*final_div).

    The shape of torch.optim.lr_scheduler.OneCycleLR (Smith & Topin 2017), without its momentum cycling.
    NOTE: like ``cosine``, it reaches its floor at step ``total``, one after the last step trained, where
    OneCycleLR(total_steps=total) reaches it on the last step: this is OneCycleLR with
    total_steps=total + 1 and pct_start=(warm + 1) / (total + 1) (tests/test_schedules.py checks it).
    """
    warm = max(1, round(pct_start * total))
    start, end = 1.0 / div, 1.0 / (div * final_div)
    if step < warm:
        return _cos_between(start, 1.0, step / warm)
    return _cos_between(1.0, end, min(1.0, (step - warm) / max(1, total - warm)))


def with_warmup(schedule: Schedule, warmup_steps: int) -> Schedule:
    """Linear warm-up from ~0 to the schedule's value over the first ``warmup_steps`` (Goyal et al. 2017)."""
    if warmup_steps <= 0:
        return schedule

    def warmed(step: int, total: int) -> float:
        ramp = min(1.0, (step + 1) / warmup_steps)
        return ramp * schedule(step, total)

    return warmed


def _cos_between(a: float, b: float, t: float) -> float:
    return b + (a - b) * (1 + math.cos(math.pi * t)) / 2


def build_schedule(config: ScheduleOptions, steps_per_epoch: int) -> Schedule:
    """The multiplier function for a config's schedule options (``--schedule`` and its companions)."""
    base: Schedule = {  # type: ignore[assignment]  # partials of Schedule-shaped functions
        "constant": constant,
        "cosine": cosine,
        "onecycle": functools.partial(onecycle, pct_start=config.pct_start),
        "step": functools.partial(step_decay, every=config.step_epochs * steps_per_epoch, gamma=config.gamma),
    }[config.schedule]
    return with_warmup(base, round(config.warmup_epochs * steps_per_epoch))


class ScheduleOptions(Protocol):
    """The fields of TrainConfig that shape the schedule (a Protocol, so this module needs no config)."""

    schedule: str
    step_epochs: int
    gamma: float
    warmup_epochs: float
    pct_start: float


SCHEDULES = ("constant", "step", "cosine", "onecycle")
