"""Every training option with its default, what it accepts and what it does: ``cnnlab.options()``,
the Python side of ``cnnlab train --help``, read from the one declaration in ``TrainConfig``."""

from __future__ import annotations

import dataclasses
from typing import Any

from cnnlab.training.checks import shown
from cnnlab.training.config import FIELDS, PRESETS

__all__ = ["Option", "Options", "options"]


@dataclasses.dataclass(frozen=True)
class Option:
    name: str  # the keyword: cnnlab.train(name=...)
    default: Any
    accepts: str  # e.g. "a number >= 0", "one of sgd, adam, adamw"
    help: str

    @property
    def flag(self) -> str:
        """The command line's spelling: ``--batch-size`` for ``batch_size``."""
        return "--" + self.name.replace("_", "-")


class Options(list):
    """The options, one ``Option`` each: printed as a table, shown in a notebook as an HTML one."""

    def __str__(self) -> str:
        width = max(len(o.name) for o in self)
        lines = [
            f"{o.name:<{width}}  default {shown(o.default)}; {o.accepts}\n{'':<{width}}  {o.help}"
            for o in self
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from cnnlab.report.display import table

        header = ("option", "default", "accepts", "what it does")
        return table(
            header, [(o.name, shown(o.default), o.accepts, o.help) for o in self], first_is_header=True
        )

    def __repr__(self) -> str:
        return f"Options({', '.join(o.name for o in self)})"


def options() -> Options:
    """Every option of ``cnnlab.train`` (and of ``cnnlab train``), in declaration order."""
    found = Options()
    for name, field in FIELDS.items():
        accepts = field.metadata["check"].describe().removeprefix("must be ")
        if name == "preset":
            accepts = f"one of {', '.join(PRESETS)}"
        if field.metadata["check"].optional:
            accepts += ", or None"
        found.append(Option(name, field.default, accepts, field.metadata["help"]))
    return found
