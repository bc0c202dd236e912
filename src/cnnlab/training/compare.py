"""``cnnlab compare``: the same model and data under several optimizers and rates, over seeds.

The notebook ends with an exercise: change the optimizer to Adam and compare. This runs every
(optimizer, lr) configuration for each seed as an ordinary run (each in its own run directory
under the comparison's), then writes one table, ``compare.csv``, and overlay plots.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from pathlib import Path

from cnnlab.errors import DivergedError
from cnnlab.runs import layout as rundir
from cnnlab.training.config import TrainConfig, resolve

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


def plan(base: TrainConfig, optimizers: list[str], lrs: list[float] | None) -> list[tuple[str, float]]:
    """The (optimizer, lr) grid; without --lrs each optimizer keeps the base rate if the base config
    is for it, else its conventional rate (stated in the table, never silent)."""
    if lrs:
        return [(opt, lr) for opt in optimizers for lr in lrs]
    return [(opt, base.lr if opt == base.optimizer else CONVENTIONAL_LR[opt]) for opt in optimizers]


def run_all(
    base_options: dict,
    config_file: str | None,
    grid: list[tuple[str, float]],
    seeds: list[int],
    out: Path,
    log: Callable[[str], None],
) -> list[Outcome]:
    from cnnlab.training.run import Session, train

    outcomes = []
    for optimizer, lr in grid:
        for seed in seeds:
            name = f"{optimizer}-lr{lr:g}-seed{seed}"
            config = resolve(
                {**base_options, "optimizer": optimizer, "lr": lr, "seed": seed, "out": str(out / name)},
                config_file,
            )
            try:
                result = train(config, Session(log=lambda m: None, quiet=True))
                outcomes.append(Outcome(optimizer, lr, seed, result.history, result.summary))
                log(
                    f"{name}: test accuracy {result.summary['test_accuracy']:.2%} "
                    f"({result.summary['seconds']:.0f} s)"
                )
            except DivergedError:
                history = _partial_history(out / name)
                outcomes.append(Outcome(optimizer, lr, seed, history, None))
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
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std([s[metric] for s in done])
        row["seconds_mean"] = _mean_std([s["seconds"] for s in done])[0]
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    header = (
        f"{'optimizer':<9} {'lr':>8} {'seeds':>5}  {'final valid':>15}  {'best valid':>15}  "
        f"{'test':>15}  {'seconds':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = [
            f"{100 * r[f'{m}_mean']:6.2f} ± {100 * r[f'{m}_std']:4.2f}%"
            for m in ("final_valid_accuracy", "best_valid_accuracy", "test_accuracy")
        ]
        note = f"  ({r['diverged']} diverged)" if r["diverged"] else ""
        lines.append(
            f"{r['optimizer']:<9} {r['lr']:>8g} {r['seeds']:>5}  {cells[0]:>15}  {cells[1]:>15}  "
            f"{cells[2]:>15}  {r['seconds_mean']:>7.1f}{note}"
        )
    return "\n".join(lines)
