"""What a run costs before and between its training steps: start-up, and evaluation batch size.

    .venv/bin/python bench/startup.py --repeats 5

Start-up is measured in fresh processes (torch's imports are only paid once per process), two
ways in alternation: cnnlab's ``_prepare`` (the data loaded on a thread while the engine starts,
then normalised by torch) against the same steps one after another with NumPy normalising. Then,
in this process, the evaluation of the 10,000 test images at batch 256 (cnnlab's) and 1,000.
Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
start = time.perf_counter()
from cnnlab.training.config import resolve
from cnnlab.training import run
config = resolve({"model": "convnet", "batch_size": 256, "whiten": False})  # docs/results.md's setting
if sys.argv[1] == "overlapped":
    dataset, arrays, engine = run._prepare(config, quiet=True)
else:
    import math
    from cnnlab.data import load_dataset, split_arrays
    dataset, images = load_dataset(config.dataset, config.data_dir, quiet=True)
    arrays = split_arrays(images, config.train_size, config.valid_size, config.seed)
    for name in ("train_x", "valid_x", "test_x"):  # NumPy's normalisation, as before
        setattr(arrays, name, dataset.normalize(getattr(arrays, name)))
    engine = run.make_engine(config, math.ceil(len(arrays.train_y) / config.batch_size), dataset)
    for name in ("train_x", "valid_x", "test_x"):
        setattr(arrays, name, engine.to_native(getattr(arrays, name)))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def startup(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def evaluation(repeats: int) -> dict[int, float]:
    from cnnlab.training import run
    from cnnlab.training.config import resolve

    _, arrays, engine = run._prepare(resolve({}), quiet=True)
    engine.logits(arrays.test_x)  # warm-up: oneDNN builds its kernels on first use
    times: dict[int, list[float]] = {256: [], 1000: []}
    for _ in range(repeats):
        for batch in times:
            start = time.perf_counter()
            engine.logits(arrays.test_x, batch_size=batch)
            times[batch].append(time.perf_counter() - start)
    return {batch: statistics.median(t) for batch, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"overlapped": [], "sequential": []}
    for _ in range(args.repeats):
        for mode in times:
            times[mode].append(startup(mode))
    for mode, values in times.items():
        print(
            f"start-up, {mode:<10}: median {statistics.median(values):.2f} s "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )
    for batch, seconds in evaluation(args.repeats).items():
        print(f"evaluate 10,000 test images at batch {batch:>4}: median {seconds:.3f} s")


if __name__ == "__main__":
    main()
