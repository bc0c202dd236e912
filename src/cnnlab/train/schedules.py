"""Learning-rate schedules as pure functions: (step, total_steps) -> multiplier of the base rate.

Pure functions serve both backends: torch wraps them in LambdaLR, the NumPy engine sets
``optimizer.lr`` from them, and tests check them without building an optimizer.
"""

from __future__ import annotations

import math


def constant(step: int, total: int) -> float:
    return 1.0


def onecycle(step: int, total: int, pct_start: float = 0.25, div: float = 25.0, final_div: float = 1e4) -> float:
    """Cosine warm-up from lr/div to lr over ``pct_start`` of the run, then cosine down to lr/(div*final_div).

    The shape of torch.optim.lr_scheduler.OneCycleLR (Smith & Topin 2017), without its momentum cycling.
    """
    warm = max(1, round(pct_start * total))
    start, end = 1.0 / div, 1.0 / (div * final_div)
    if step < warm:
        return _cos_between(start, 1.0, step / warm)
    return _cos_between(1.0, end, min(1.0, (step - warm) / max(1, total - warm)))


def _cos_between(a: float, b: float, t: float) -> float:
    return b + (a - b) * (1 + math.cos(math.pi * t)) / 2


SCHEDULES = {"constant": constant, "onecycle": onecycle}
