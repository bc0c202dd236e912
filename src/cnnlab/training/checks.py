"""What each training option accepts, declared once beside its field and read by everyone.

``TrainConfig``'s fields carry a ``Check`` in their metadata. ``TrainConfig.validate()`` runs the
checks in field order, ``cnnlab train --help`` and argparse take their choices from them, and the
Python API goes through the same validation, so a limit lives in exactly one place.

Types are exact, as a typo in a hand-edited config.json should fail loudly: ``true`` is not a
number, ``8.0`` is not a whole number of epochs, and ``"yes"`` is not a boolean.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

_KIND_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


@dataclasses.dataclass(frozen=True)
class Check:
    """The values a config field accepts. ``why`` replaces the generated wording where a hint helps."""

    kind: type  # int, float, bool, str or tuple; a float field also takes whole numbers
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bound itself is excluded
    high_open: bool = False
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None  # a callable is read when checking
    optional: bool = False  # None is allowed (it means "off" or "the default")
    items: Check | None = None  # for tuple fields: the check every item passes
    length: int | None = None  # for tuple fields
    why: str = ""

    def allowed(self) -> tuple[str, ...] | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def problem(self, value: Any) -> str | None:
        """None when ``value`` passes, else what it must be ("must be ...")."""
        if value is None and self.optional:
            return None
        if not self._right_kind(value) or not self._in_range(value):
            return self.why or self.describe()
        return None

    def describe(self) -> str:
        allowed = self.allowed()
        if allowed is not None:
            return f"must be one of {', '.join(allowed)}"
        if self.kind is tuple:
            return f"must be {self.length} values"
        what = _KIND_NAMES[self.kind]
        if self.low is None and self.high is None:
            return f"must be {what}"
        if self.kind is int and self.high is None:
            return f"must be {what} >= {_num(self.low)}"
        if self.kind is int:
            return f"must be {what} from {_num(self.low)} to {_num(self.high)}"
        if self.high is None:
            return f"must be {'>' if self.low_open else '>='} {_num(self.low)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"must be in {left}{_num(self.low)}, {_num(self.high)}{right}"

    def _right_kind(self, value: Any) -> bool:
        if self.kind is tuple:
            return (
                isinstance(value, tuple)
                and (self.length is None or len(value) == self.length)
                and all(self.items is None or self.items.problem(v) is None for v in value)
            )
        if self.kind is bool:
            return type(value) is bool
        if isinstance(value, bool):  # bool is an int subclass; never a number here
            return False
        if self.kind is float:
            return isinstance(value, (int, float)) and _finite_float(value)
        if self.kind is int:
            return isinstance(value, int)
        allowed = self.allowed()
        return isinstance(value, str) and (allowed is None or value in allowed)

    def _in_range(self, value: Any) -> bool:
        if self.kind not in (int, float):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def _finite_float(value: int | float) -> bool:
    """Whether ``value`` is a finite float, or a whole number a float can hold (10**400 cannot)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a 5,000-digit number must not fill the terminal."""
    if isinstance(value, int) and value.bit_length() > 256:  # repr() refuses past 4,300 digits
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
