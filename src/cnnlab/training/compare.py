"""``cnnlab compare``: the same model and data under several optimizers and rates, over seeds.

The notebook ends with an exercise: change the optimizer to Adam and compare. This runs every
(optimizer, lr) configuration for each seed as an ordinary run (each in its own run directory
under the comparison's), then writes one table, ``compare.csv``, and overlay plots.
"""

from __future__ import annotations

import dataclasses
import html
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import ConfigError, DivergedError, option
from cnnlab.runs import layout as rundir
from cnnlab.training.config import OPTIMIZERS, resolve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    compare_loss.png there."""
    from cnnlab.report.overlay import plot_overlay

    with rundir.claim_new_run_dir(out, "compare") as claimed:
        directory = claimed.path
        log(f"comparing {len(plan.grid)} configuration(s) x {len(plan.seeds)} seed(s) in {directory}")
        outcomes = run_all(plan, directory, log)
        rows = summarise(outcomes)
        rundir.write_csv(directory / "compare.csv", COLUMNS, rows)
        optimizers = list(dict.fromkeys(o for o, _ in plan.grid))
        title = f"model {plan.model}: {' vs '.join(optimizers)}"
        plot_overlay(outcomes, directory / "compare_loss.png", title=title)
    return Comparison(directory, rows, outcomes, title)


def run_all(plan: Plan, out: Path, log: Callable[[str], None]) -> list[Outcome]:
    from cnnlab.training.run import Session, train

    outcomes = []
    for optimizer, lr in plan.grid:
        for seed in plan.seeds:
            name = f"{optimizer}-lr{lr:g}-seed{seed}"
            run_options = {
                **plan.options,
                "optimizer": optimizer,
                "lr": lr,
                "seed": seed,
                "out": str(out / name),
            }
            config = resolve(run_options, plan.config_file)
            try:
                result = train(config, Session(log=lambda m: None, quiet=True))
                outcomes.append(Outcome(optimizer, lr, seed, result.history, result.summary, out / name))
                log(
                    f"{name}: test accuracy {result.summary['test_accuracy']:.2%} "
                    f"({result.summary['seconds']:.0f} s)"
                )
            except DivergedError:
                history = _partial_history(out / name)
                outcomes.append(Outcome(optimizer, lr, seed, history, None, out / name))
                log(f"{name}: diverged after {len(history)} epoch(s)")
    return outcomes


def _partial_history(run: Path) -> list[dict]:
    import csv

    path = run / rundir.METRICS
    if not path.is_file():
        return []
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


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
