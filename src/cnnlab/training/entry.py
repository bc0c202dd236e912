"""The one way into training for ``cnnlab train`` and ``cnnlab.train``: ``plan`` turns what was asked
into a ``NewRun`` (the options layered over a config file) or a ``Resume``, and its ``run(session)``
trains.

The command parses arguments and prints, the Python API converts Python values; the rules between
what was asked and what is trained live here once, so the two cannot drift apart. Messages name
options as the caller spells them (``--lr`` or ``lr=``, ``cnnlab.errors.option``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError, option
from cnnlab.training import run as runner
from cnnlab.training.config import FIELDS, TrainConfig, read_config_file, resolve

__all__ = ["NewRun", "Resume", "plan"]


@dataclasses.dataclass(frozen=True)
class NewRun:
    """A new run of ``config``, in a new directory."""

    config: TrainConfig

    def run(self, session: runner.Session) -> runner.RunResult:
        return runner.train(self.config, session)


@dataclasses.dataclass(frozen=True)
class Resume:
    """``run_dir`` continued from its last saved epoch; with ``epochs``, trained further to that many."""

    run_dir: str | Path
    epochs: int | None = None

    def run(self, session: runner.Session) -> runner.RunResult:
        return runner.resume(self.run_dir, session, epochs=self.epochs)


def plan(
    explicit: dict[str, Any], config_file: str | None = None, resume: str | Path | None = None
) -> NewRun | Resume:
    """What to train: ``explicit`` (the options given, by field name) over ``config_file`` (a saved
    config.json), or the run ``resume`` names. Everything is checked here, before any work: a bad
    option, a config file that cannot be read, options beside ``resume``."""
    if resume is not None:
        refuse_options_beside_resume(explicit, config_file)
        return Resume(resume, explicit.get("epochs"))
    return NewRun(resolve(rerun_gets_a_new_directory(explicit, config_file), config_file))


def refuse_options_beside_resume(explicit: dict[str, Any], config_file: str | None) -> None:
    """A resumed run goes on as configured: the only option it takes is ``epochs`` (train further)."""
    others = [option(name) for name in FIELDS if name in explicit and name != "epochs"]
    others += [option("config")] if config_file is not None else []
    if others:
        raise ConfigError(
            f"{option('resume')} continues a run as configured (and {option('epochs')} trains it "
            f"further); drop the other options ({', '.join(others)})"
        )


def rerun_gets_a_new_directory(explicit: dict[str, Any], config_file: str | None) -> dict[str, Any]:
    """A saved run's config.json records that run's own directory as ``out``: rerunning it, unless
    ``out`` is given, gets a new directory instead of being refused as "not empty"."""
    if not config_file or "out" in explicit:
        return explicit
    saved_out = read_config_file(config_file).get("out")
    if isinstance(saved_out, str) and Path(saved_out).is_dir() and any(Path(saved_out).iterdir()):
        return {**explicit, "out": None}
    return explicit
