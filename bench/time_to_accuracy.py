"""Seconds to 90-96% test accuracy per preset, beside the notebook's own loop, in one run.

    .venv/bin/python bench/time_to_accuracy.py --presets default,fast-cpu,convnet-full,best-cpu --seeds 3
    .venv/bin/python bench/time_to_accuracy.py --presets default,fast-gpu,best-gpu --notebook-epochs 0  # GPU

Each run is a fresh process, ``python -m cnnlab train --eval-test-every-epoch`` as a user would start
it, so torch's imports are paid every time (the test column is only read here, never used for a
choice). Times are metrics.csv's ``seconds``: wall clock from the command's start, start-up and data
loading included. The final epoch's accuracy is reported, not the best. The notebook's loop
(bench/notebook_loop.py: DataLoader with per-sample transforms, `seed` model, SGD lr 0.1,
30 epochs) runs in the same process, so the ratio holds on a noisy machine even when the
absolute seconds drift.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

THRESHOLDS = (0.90, 0.92, 0.93, 0.94, 0.95, 0.96)


def time_to(history: list[dict], threshold: float) -> float | None:
    for row in history:
        if row["test_accuracy"] >= threshold:
            return row["seconds"]
    return None


def run_preset(preset: str, seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "cnnlab",
            "train",
            "--quiet",
            "--eval-test-every-epoch",
            "--seed",
            str(seed),
            "--out",
            f"{tmp}/run",
            *extra,
        ]
        if preset != "default":
            command += ["--preset", preset]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        with open(f"{tmp}/run/metrics.csv", newline="") as f:
            history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
        summary = json.loads(Path(f"{tmp}/run/summary.json").read_text())
    return {
        "history": history,
        "final": summary["test_accuracy"],
        "wall": wall,
        "precision": summary["precision"],
    }


def fmt(values: list[float | None]) -> str:
    reached = [v for v in values if v is not None]
    if len(reached) < len(values) / 2:
        return "   -   "
    return f"{statistics.median(v if v is not None else float('inf') for v in values):6.1f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="default,fast-cpu,convnet-full,best-cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--notebook-epochs", type=int, default=30, help="0 skips the notebook reference")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--options", default="", help="more `cnnlab train` options for every run, e.g. '--model vgg-mini'"
    )
    args = parser.parse_args()
    extra = (["--threads", str(args.threads)] if args.threads else []) + shlex.split(args.options)
    if args.notebook_epochs:
        from notebook_loop import notebook_loop

        nb_seconds, nb_valid = notebook_loop(args.notebook_epochs, seed=0)
        print(
            f"notebook loop, {args.notebook_epochs} epochs of 10k images: {nb_seconds:.1f} s, "
            f"validation {nb_valid:.1%}",
            flush=True,
        )
    header = (
        f"{'preset':<14}"
        + "".join(f"{f'to {t:.0%}':>9}" for t in THRESHOLDS)
        + f"{'final test':>20}{'wall':>9}"
    )
    rows = []
    for preset in args.presets.split(","):
        runs = [run_preset(preset, seed, extra) for seed in range(args.seeds)]
        finals = [r["final"] for r in runs]
        cells = "".join(f"{fmt([time_to(r['history'], t) for r in runs]):>9}" for t in THRESHOLDS)
        spread = f"{statistics.median(finals):.2%} ({min(finals):.2%}-{max(finals):.2%})"
        rows.append(f"{preset:<14}{cells}{spread:>20}{statistics.median(r['wall'] for r in runs):>8.0f}s")
        to_90 = ", ".join(
            f"{t:.1f}s" if t is not None else "-" for t in (time_to(r["history"], 0.90) for r in runs)
        )
        print(f"{preset}: finals {', '.join(f'{f:.2%}' for f in finals)}; to 90%: {to_90}", flush=True)
    print(f"\nmedian of {args.seeds} seed(s); '-' = not reached by most seeds")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
