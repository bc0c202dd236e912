"""``cnnlab.train``, ``cnnlab.compare`` and ``cnnlab.lr_find``: the training commands as functions.

Options are the command line's, spelled with underscores (``batch_size=128`` for ``--batch-size
128``), with the same defaults, presets, checks and one-line error messages: they go through the
same ``resolve`` as ``cnnlab train``.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    from cnnlab.api.run import Run
    from cnnlab.training.compare import Comparison
    from cnnlab.training.lr_find import LrFind
    from cnnlab.training.options import Options


def train(
    model: str | None = None,
    *,
    config: str | Path | None = None,
    resume: str | Path | None = None,
    quiet: bool = False,
    **options: Any,
) -> Run:
    """Train a model on Fashion-MNIST and return the finished ``Run``, as ``cnnlab train`` does.

    ``model`` and ``**options`` are the command's options (``cnnlab train --help`` lists them all,
    ``epochs=3``, ``preset="best-cpu"``, ``tensorboard=True``, ...); ``config`` a saved config.json to
    start from; ``resume`` a run directory to continue instead. Progress shows as a bar in Jupyter and
    in a terminal; ``quiet=True`` hides it. Raises ``cnnlab.ConfigError`` (and the other
    ``cnnlab.CnnlabError`` subclasses) with the command's messages.
    """
    from cnnlab.api.run import Run
    from cnnlab.training import run as runner
    from cnnlab.training.config import resolve

    explicit = _options(options if model is None else {"model": model, **options})
    session = runner.Session(
        log=(lambda message: None) if quiet else print, quiet=quiet, notebook=in_notebook()
    )
    if resume is not None:
        if explicit or config is not None:
            given = ", ".join("--" + k.replace("_", "-") for k in explicit) or "--config"
            raise ConfigError(
                f"--resume continues a run exactly as configured; drop the other options ({given})"
            )
        result = runner.resume(resume, session)
    else:
        result = runner.train(resolve(explicit, str(config) if config else None), session)
    return Run(result.run_dir)


def compare(
    optimizers: list[str] | tuple[str, ...] = ("sgd", "adam"),
    lrs: list[float] | None = None,
    seeds: int = 3,
    *,
    out: str | Path | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> Comparison:
    """``cnnlab compare``: each (optimizer, lr) over ``seeds`` seeds; returns the table (print it) with
    the directory holding compare.csv and compare_loss.png. ``**options`` as for ``train`` (any but
    optimizer, lr, seed and out)."""
    from cnnlab.training.compare import make_plan, run_comparison

    explicit = _options(options)
    taken = sorted(set(explicit) & {"optimizer", "lr", "seed", "out"})
    if taken:
        raise ConfigError(f"compare() sets {', '.join(taken)} itself; use optimizers=, lrs=, seeds=, out=")
    plan = make_plan(
        explicit, list(optimizers), list(lrs) if lrs else None, seeds, str(config) if config else None
    )
    return run_comparison(plan, out, log=print)


def lr_find(
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
    *,
    config: str | Path | None = None,
    **options: Any,
) -> LrFind:
    """``cnnlab lr-find``: the learning-rate range test; returns the sweep (``.suggestion``, ``.sweep``
    with the rates and losses) and the directory holding lr_find.csv and lr_find.png."""
    from cnnlab.training.config import resolve
    from cnnlab.training.lr_find import SweepRange, find_lr

    rates = SweepRange(start_lr, end_lr, steps)
    return find_lr(resolve(_options(options), str(config) if config else None), rates, log=lambda m: None)


def options() -> Options:
    """Every option ``train`` (and ``compare``, ``lr_find``) takes as a keyword, with its default, the
    values it accepts and what it does: ``cnnlab train --help`` for Python. Prints as a list; a
    notebook shows a table."""
    from cnnlab.training.options import options as every_option

    return every_option()


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """The options as given, after refusing a name the command line does not have (with a hint)."""
    from cnnlab.training.config import FIELDS

    for name in options:
        if name not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS), n=1)
            hint = f"; did you mean {close[0]}?" if close else "; `cnnlab train --help` lists the options"
            raise ConfigError(f"unknown option {name!r}{hint}")
    return {name: _plain(value) for name, value in options.items()}


def _plain(value: Any) -> Any:
    """NumPy scalars (from np.arange sweeps) and paths as the plain values the CLI would give."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    if isinstance(value, list):  # betas as a list
        return tuple(_plain(v) for v in value)
    return value


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel, where progress shows as one bar updated in place."""
    return "ipykernel" in sys.modules and "IPython" in sys.modules
