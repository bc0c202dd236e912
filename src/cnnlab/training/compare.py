"""``cnnlab compare``: the same model and data under several optimizers and rates, over seeds.

The notebook ends with an exercise: change the optimizer to Adam and compare. This runs every
(optimizer, lr) configuration for each seed as an ordinary run (each in its own run directory
under the comparison's), then writes one table, ``compare.csv``, and overlay plots.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import fileio
from cnnlab.errors import (
    EXIT_INTERRUPTED,
    ConfigError,
    DivergedError,
    InterruptedRun,
    RunDirError,
    option,
    resume_command,
)
from cnnlab.training import claims, rundir
from cnnlab.training.config import OPTIMIZERS, TrainConfig, resolve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLAN_VERSION = 1  # compare.json's layout
# The rate an optimizer gets when the user names none and the base config is for another optimizer:
# the usual starting points (torch's Adam default; the notebook's SGD rate).
CONVENTIONAL_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3}
COLUMNS = (
    "optimizer",
    "lr",
    "seeds",
    "diverged",
    "final_valid_accuracy_mean",
    "final_valid_accuracy_std",
    "best_valid_accuracy_mean",
    "best_valid_accuracy_std",
    "test_accuracy_mean",
    "test_accuracy_std",
    "seconds_mean",
)


@dataclasses.dataclass
class Outcome:
    optimizer: str
    lr: float
    seed: int
    history: list[dict]
    summary: dict | None  # None when the run diverged
    path: Path | None = None  # the run directory


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every run of a comparison: the shared options, the (optimizer, lr) grid and the seeds."""

    options: dict[str, Any]  # the options every run shares, as the CLI or the API received them
    config_file: str | None
    grid: list[tuple[str, float]]
    seeds: list[int]

    @property
    def model(self) -> str:
        return resolve(self.options, self.config_file).model


def make_plan(
    options: dict[str, Any],
    optimizers: list[str],
    lrs: list[float] | None,
    seeds: int,
    config_file: str | None,
) -> Plan:
    """Check everything before any training: the optimizers, the seed count and every run's config."""
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown or not optimizers:
        raise ConfigError(
            f"{option('optimizers')} takes names from {', '.join(OPTIMIZERS)}. "
            f"Received: {','.join(map(str, optimizers))}"
        )
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 1000:
        raise ConfigError(f"{option('seeds')} must be a whole number from 1 to 1000. Received: {seeds!r}")
    base = resolve(options, config_file)  # refuses bad options before any training
    if lrs:
        grid = [(opt, lr) for opt in optimizers for lr in lrs]
    else:  # each optimizer keeps the base rate if the base config is for it, else its conventional rate
        grid = [(opt, base.lr if opt == base.optimizer else CONVENTIONAL_LR[opt]) for opt in optimizers]
    for optimizer, lr in grid:
        resolve({**options, "optimizer": optimizer, "lr": lr}, config_file)
    return Plan(dict(options), config_file, grid, list(range(seeds)))


@dataclasses.dataclass
class Comparison:
    """A finished comparison: one row per (optimizer, lr) and where compare.csv and the plot are."""

    out: Path
    rows: list[dict]
    outcomes: list[Outcome]
    title: str = ""

    def __str__(self) -> str:
        return format_table(self.rows)

    def __repr__(self) -> str:
        return f"{self.title}\n{self}\nsaved in {self.out}"

    def run(self, optimizer: str, seed: int = 0, lr: float | None = None) -> Path:
        """The run directory of ``optimizer`` (at ``lr``, by default its first) with ``seed``, for
        ``cnnlab.load_run``."""
        for o in self.outcomes:
            if (o.optimizer, o.seed) == (optimizer, seed) and lr in (None, o.lr) and o.path is not None:
                return o.path
        made = ", ".join(f"{o.optimizer} (lr {o.lr:g}, seed {o.seed})" for o in self.outcomes)
        raise ConfigError(f"this comparison has no run of {optimizer!r} with seed {seed}; it ran {made}")

    def plot(self) -> Figure:
        """Each configuration's training and validation loss per epoch: the mean over seeds, and a
        band from the lowest to the highest seed (compare_loss.png)."""
        from cnnlab.report.overlay import overlay_figure

        return overlay_figure(self.outcomes, self.title)

    def _repr_html_(self) -> str:
        from cnnlab.report.display import image_tag, note, table

        header = ("optimizer", "lr", "seeds", "final valid", "best valid", "test", "seconds", "diverged")
        rows = [
            (
                r["optimizer"],
                f"{r['lr']:g}",
                r["seeds"],
                *(
                    _percent(r[f"{m}_mean"], r[f"{m}_std"]).strip()
                    for m in ("final_valid_accuracy", "best_valid_accuracy", "test_accuracy")
                ),
                f"{r['seconds_mean']:.1f}",
                r["diverged"],
            )
            for r in self.rows
        ]
        return (
            f"<div><b>{html.escape(self.title)}</b>{table(header, rows)}"
            f"{note(f'accuracy: mean ± standard deviation over seeds; saved in {self.out}')}"
            f"{image_tag(self.plot(), 'loss per epoch of each configuration')}</div>"
        )


def run_comparison(
    plan: Plan, out: str | Path | None = None, log: Callable[[str], None] = print
) -> Comparison:
    """Run the plan in a new directory (``out`` or runs/<timestamp>-compare); write compare.csv and
    compare_loss.png there. The plan goes first into compare.json, so ``resume_comparison`` can
    finish a comparison that was stopped."""
    with claims.claim_new_run_dir(out, "compare") as claimed:
        directory = claimed.path
        jobs = plan_jobs(plan, directory)
        _save_jobs(directory / rundir.COMPARE_PLAN, plan.model, jobs)
        log(f"comparing {len(plan.grid)} configuration(s) x {len(plan.seeds)} seed(s) in {directory}")
        return _finish(directory, plan.model, _stoppable(directory, jobs, log))


def resume_comparison(directory: str | Path, log: Callable[[str], None] = print) -> Comparison:
    """Continue a stopped comparison: its finished runs are kept, the unfinished one resumed from its
    last complete epoch, the rest trained; then the table and the plot are written as usual."""
    directory = rundir.as_path(directory, "--resume")
    model, jobs = _load_jobs(directory / rundir.COMPARE_PLAN)
    with claims.claim(directory, new=False):
        finished = sum((directory / job.name / rundir.SUMMARY).is_file() for job in jobs)
        log(f"resuming the comparison in {directory}: {finished} of {len(jobs)} run(s) finished before")
        return _finish(directory, model, _stoppable(directory, jobs, log))


def _finish(directory: Path, model: str, outcomes: list[Outcome]) -> Comparison:
    from cnnlab.report.overlay import plot_overlay

    rows = summarise(outcomes)
    fileio.write_csv(directory / "compare.csv", COLUMNS, rows)
    optimizers = list(dict.fromkeys(o.optimizer for o in outcomes))
    title = f"model {model}: {' vs '.join(optimizers)}"
    plot_overlay(outcomes, directory / "compare_loss.png", title=title)
    return Comparison(directory, rows, outcomes, title)


@dataclasses.dataclass(frozen=True)
class Job:
    """One run of a comparison: its name (its directory under the comparison's) and its config."""

    name: str
    optimizer: str
    lr: float
    seed: int
    config: TrainConfig


def plan_jobs(plan: Plan, out: Path) -> list[Job]:
    jobs = []
    for optimizer, lr in plan.grid:
        for seed in plan.seeds:
            name = f"{optimizer}-lr{lr:g}-seed{seed}"
            options = {**plan.options, "optimizer": optimizer, "lr": lr, "seed": seed, "out": str(out / name)}
            config = resolve(options, plan.config_file)
            if config.data_dir is not None:  # saved in the plan: a resume may start from another directory
                config = dataclasses.replace(config, data_dir=os.path.abspath(config.data_dir))
            jobs.append(Job(name, optimizer, lr, seed, config))
    return jobs


def run_all(plan: Plan, out: Path, log: Callable[[str], None]) -> list[Outcome]:
    return run_jobs(plan_jobs(plan, out), out, log)


def run_jobs(jobs: list[Job], out: Path, log: Callable[[str], None]) -> list[Outcome]:
    """Each job's outcome: read back when its run finished before, else trained (or resumed)."""
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(_finished(job, out / job.name, log) or _train(job, out / job.name, log))
        except DivergedError:
            history = _partial_history(out / job.name)
            outcomes.append(Outcome(job.optimizer, job.lr, job.seed, history, None, out / job.name))
            log(f"{job.name}: diverged after {len(history)} epoch(s)")
    return outcomes


def _finished(job: Job, run: Path, log: Callable[[str], None]) -> Outcome | None:
    if not (run / rundir.SUMMARY).is_file():
        return None
    summary = rundir.read_json(run / rundir.SUMMARY)
    if not all(isinstance(summary.get(k), (int, float)) for k in ("test_accuracy", "seconds")):
        raise RunDirError(f"{run / rundir.SUMMARY} is damaged: it lacks the test accuracy or the seconds")
    log(f"{job.name}: test accuracy {summary['test_accuracy']:.2%}, finished before")
    return Outcome(job.optimizer, job.lr, job.seed, rundir.read_metrics(run / rundir.METRICS), summary, run)


def _train(job: Job, run: Path, log: Callable[[str], None]) -> Outcome:
    from cnnlab.training import run as runner

    session = runner.Session(log=lambda m: None, quiet=True)
    if (run / rundir.CHECKPOINT).is_file():
        result = runner.resume(run, session)
    else:
        result = runner.train(job.config, session)
    summary = result.summary
    log(f"{job.name}: test accuracy {summary['test_accuracy']:.2%} ({summary['seconds']:.0f} s)")
    return Outcome(job.optimizer, job.lr, job.seed, result.history, result.summary, run)


def _stoppable(directory: Path, jobs: list[Job], log: Callable[[str], None]) -> list[Outcome]:
    """``run_jobs``; stopped (Ctrl+C, SIGTERM, a closed stdout) or failing to write, it says how
    to continue the whole comparison, not one run of it."""
    command = resume_command(directory, command="compare")
    try:
        return run_jobs(jobs, directory, log)
    except (InterruptedRun, KeyboardInterrupt) as exc:
        done = sum((directory / job.name / rundir.SUMMARY).is_file() for job in jobs)
        why = exc.reason if isinstance(exc, InterruptedRun) else (str(exc) or "interrupted")
        raise InterruptedRun(
            f"{why}; {done} of {len(jobs)} run(s) of the comparison are finished, and an unfinished one "
            f"keeps its last complete epoch. Continue with: {command}",
            getattr(exc, "exit_code", EXIT_INTERRUPTED),
            why,
        ) from None
    except RunDirError as exc:
        raise RunDirError(f"{exc} (then finish the comparison with: {command})") from None


def _save_jobs(path: Path, model: str, jobs: list[Job]) -> None:
    runs = [
        {"name": j.name, "optimizer": j.optimizer, "lr": j.lr, "seed": j.seed, "config": j.config.to_dict()}
        for j in jobs
    ]
    fileio.write_json(path, {"version": PLAN_VERSION, "model": model, "runs": runs})


def _load_jobs(path: Path) -> tuple[str, list[Job]]:
    """compare.json's runs, each config checked as any config is; a damaged plan is one RunDirError."""
    if not path.parent.is_dir() or not path.is_file():
        raise RunDirError(
            f"{path.parent} has no {path.name}, the plan `cnnlab compare --resume` continues: pass a "
            "directory `cnnlab compare` made (one made before cnnlab wrote plans cannot be continued)"
        )
    saved = rundir.read_json(path)
    try:
        jobs = [_saved_job(r, path.parent) for r in saved["runs"]]
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise RunDirError(f"{path} is damaged ({' '.join(str(exc).split())[:200]})") from None
    if saved.get("version") != PLAN_VERSION or not isinstance(saved.get("model"), str) or not jobs:
        raise RunDirError(f"{path} is damaged: it is not a plan of version {PLAN_VERSION} with runs")
    return saved["model"], jobs


def _saved_job(run: dict, directory: Path) -> Job:
    name = run["name"]
    if not isinstance(name, str) or name != Path(name).name or name.startswith("."):
        raise ValueError(f"a run's name is not a directory name: {name!r:.80}")
    config = resolve({**run["config"], "out": str(directory / name)})
    return Job(name, run["optimizer"], float(run["lr"]), int(run["seed"]), config)


def _partial_history(run: Path) -> list[dict]:
    import csv

    path = run / rundir.METRICS
    if not path.is_file():
        return []
    try:
        with open(path) as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except (OSError, ValueError, TypeError, csv.Error):  # a damaged file: the diverged run's epochs unknown
        return []


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(outcomes: list[Outcome]) -> list[dict]:
    rows = []
    for key in dict.fromkeys((o.optimizer, o.lr) for o in outcomes):
        group = [o for o in outcomes if (o.optimizer, o.lr) == key]
        done = [o.summary for o in group if o.summary is not None]
        row = {"optimizer": key[0], "lr": key[1], "seeds": len(group), "diverged": len(group) - len(done)}
        for metric in ("final_valid_accuracy", "best_valid_accuracy", "test_accuracy"):
            # null in a run without a validation split (--valid-size 0)
            scores = [s[metric] for s in done if s[metric] is not None]
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std(scores)
        row["seconds_mean"] = _mean_std([s["seconds"] for s in done])[0]
        rows.append(row)
    return rows


def _percent(mean: float, std: float) -> str:
    """A mean and spread of accuracies as a cell; "-" when no run had the score."""
    return "-" if math.isnan(mean) else f"{100 * mean:6.2f} ± {100 * std:4.2f}%"


def format_table(rows: list[dict]) -> str:
    header = (
        f"{'optimizer':<9} {'lr':>8} {'seeds':>5}  {'final valid':>15}  {'best valid':>15}  "
        f"{'test':>15}  {'seconds':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = [
            _percent(r[f"{m}_mean"], r[f"{m}_std"])
            for m in ("final_valid_accuracy", "best_valid_accuracy", "test_accuracy")
        ]
        note = f"  ({r['diverged']} diverged)" if r["diverged"] else ""
        lines.append(
            f"{r['optimizer']:<9} {r['lr']:>8g} {r['seeds']:>5}  {cells[0]:>15}  {cells[1]:>15}  "
            f"{cells[2]:>15}  {r['seconds_mean']:>7.1f}{note}"
        )
    return "\n".join(lines)
