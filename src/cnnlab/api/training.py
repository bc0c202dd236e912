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

from cnnlab.api.edge import api_edge
from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    from cnnlab.api.run import Run
    from cnnlab.training.compare import Comparison
    from cnnlab.training.lr_find import LrFind
    from cnnlab.training.options import Options


@api_edge
def train(
    model: Any = None,
    *,
    config: str | Path | None = None,
    resume: str | Path | None = None,
    callbacks: Any = None,
    quiet: bool = False,
    **options: Any,
) -> Run:
    """Train a model (on Fashion-MNIST unless ``dataset=`` says otherwise) and return the finished
    ``Run``, as ``cnnlab train`` does.

    ``model`` and ``**options`` are the command's options (``cnnlab.options()`` lists them all:
    ``epochs=3``, ``preset="lesson"``, ``dataset="digits"``, ...; ``early_stopping=N`` is
    ``patience=N``). ``model`` is a registry name, ``"FILE.py:FUNCTION"``, a ``torch.nn.Module``
    (copied: yours keeps its weights) or a function ``(input_shape, num_classes) -> Module``; the run
    keeps it as a pickle that carries its class's code, so it reloads in a new kernel
    (``cnnlab.user_models``). ``config`` a saved config.json to start from. ``resume`` a run
    directory to continue from its last saved epoch; with ``epochs=N`` as well, a finished run is
    trained further to N epochs in all (its schedule re-planned for the new length). ``callbacks``
    are called after each epoch with its state, and may stop the run (``cnnlab.training.callbacks``).
    Progress shows in Jupyter and in a terminal; ``quiet=True`` hides it. Raises
    ``cnnlab.ConfigError`` (and the other ``cnnlab.CnnlabError`` subclasses) with one-line messages.
    """
    from cnnlab.api.run import Run
    from cnnlab.errors import AlreadyFinished
    from cnnlab.training import entry
    from cnnlab.training import run as runner
    from cnnlab.training.callbacks import check_callbacks

    if model is not None and not isinstance(model, (str, os.PathLike)):
        from cnnlab import user_models

        model = user_models.given(model)
    explicit = _options(options if model is None else {"model": model, **options})
    session = runner.Session(
        log=(lambda message: None) if quiet else print,
        quiet=quiet,
        notebook=in_notebook(),
        callbacks=check_callbacks(callbacks),
    )
    start = entry.plan(explicit, None if config is None else str(config), resume)
    try:
        return Run(start.run(session).run_dir)
    except AlreadyFinished as done:  # only a resume meets it, and it is no mistake: say so, give the run
        if not isinstance(start, entry.Resume):
            raise
        session.log(str(done))
        return Run(start.run_dir)


@api_edge
def compare(
    optimizers: list[str] | tuple[str, ...] = ("sgd", "adam"),
    lrs: list[float] | None = None,
    seeds: int = 3,
    *,
    out: str | Path | None = None,
    config: str | Path | None = None,
    resume: str | Path | None = None,
    **options: Any,
) -> Comparison:
    """``cnnlab compare``: each (optimizer, lr) over ``seeds`` seeds; returns the table (a notebook
    shows it with the loss curves, ``.plot()`` draws them) with the directory holding compare.csv
    and compare_loss.png. ``**options`` as for ``train`` (any but optimizer, lr, seed and out);
    ``compare(["sgd", "adam"], preset="lesson")`` is the class notebook's comparison. ``resume``: a
    stopped comparison's directory to continue instead."""
    from cnnlab.training.compare import make_plan, resume_comparison, run_comparison

    if resume is not None:
        if options or config is not None or out is not None:
            raise ConfigError("resume= continues a comparison exactly as planned; drop the other options")
        return resume_comparison(resume, log=print)
    explicit = _options(options)
    taken = sorted(set(explicit) & {"optimizer", "lr", "seed", "out"})
    if taken:
        raise ConfigError(f"compare() sets {', '.join(taken)} itself; use optimizers=, lrs=, seeds=, out=")
    names, rates = _listed(optimizers, "optimizers", "'sgd', 'adam'"), _listed(lrs, "lrs", "0.1, 0.01")
    plan = make_plan(explicit, names, rates or None, seeds, str(config) if config else None)
    return run_comparison(plan, out, log=print)


def _listed(value: Any, name: str, example: str) -> list:
    """A list argument as a list: one name alone is a list of one; the command line's comma string
    ("sgd,adam") is refused with the list to write instead."""
    if value is None:
        return []
    if isinstance(value, str):
        if "," in value:
            raise ConfigError(
                f"{name}= takes a list, not the command line's comma string: write {name}=[{example}]. "
                f"Received: {value!r}"
            )
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


@api_edge
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


@api_edge
def options() -> Options:
    """Every option ``train`` (and ``compare``, ``lr_find``) takes as a keyword, with its default, the
    values it accepts and what it does: ``cnnlab train --help`` for Python. Prints as a list; a
    notebook shows a table."""
    from cnnlab.training.options import options as every_option

    return every_option()


# Names from other libraries' habits, and what cnnlab calls them (or why it has none).
HINTS = {
    "learning_rate": "did you mean lr=?",
    "lr_rate": "did you mean lr=?",
    "n_epochs": "did you mean epochs=?",
    "num_epochs": "did you mean epochs=?",
    "max_epochs": "did you mean epochs=?",
    "bs": "did you mean batch_size=?",
    "verbose": "progress shows by default; quiet=True hides it",
    "shuffle": "the training images are always shuffled, in a new seeded order each epoch (seed=)",
    "validation_split": "did you mean valid_size=? It counts images: valid_size=5000",
    "callbacks": "callbacks= is taken by cnnlab.train only",
    "device_name": "did you mean device=?",
}
ALIASES = {"early_stopping": "patience"}  # Keras' and Lightning's name, taken as cnnlab's


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """The options as given, aliases under cnnlab's names, after refusing a name cnnlab does not
    have (with a hint)."""
    from cnnlab.training.config import FIELDS

    for alias, name in ALIASES.items():
        if alias in options:
            if name in options:
                raise ConfigError(f"{alias}= is another name for {name}=; give one of them")
            options = {(name if k == alias else k): v for k, v in options.items()}
    for name in options:
        if name not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.75)
            guess = f"did you mean {close[0]}=?" if close else "cnnlab.options() lists them"
            hint = HINTS.get(name) or guess
            raise ConfigError(f"unknown option {name}=; {hint}")
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
