"""The default Fashion-MNIST run before and after a change: its training step, timed in alternating
blocks in one process, and (``--train``) its accuracy.

    .venv/bin/python bench/versus_main.py --rev 9279214 --rounds 7 --block 20
    .venv/bin/python bench/versus_main.py --rev 9279214 --train --seeds 0,1,2

The old version is exported from git into a temporary folder as the package ``cnnlab_old`` (its
imports renamed), so both versions run in one process on the same batches: each builds the engine
of the default config (``TrainConfig()``: convnet-pool-bn, AdamW, one-cycle, EMA, bf16 where the
CPU has it) and steps it ``--block`` times, alternately, ``--rounds`` blocks each. The figure is the
ratio of the medians (new / old). The first step's loss of each is printed: the same weights and
batches give the same bits when nothing in the step changed.

With ``--train``, whole default runs of each version (``cnnlab train --seed S``, one process each,
alternating old and new per seed) give the test accuracy and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export_old(rev: str, target: Path) -> Path:
    """``src/cnnlab`` at ``rev`` as the package ``target/cnnlab_old``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src/cnnlab"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    package = target / "cnnlab_old"
    (target / "src" / "cnnlab").rename(package)
    imports = re.compile(r"^(\s*)(from|import) cnnlab\b", re.M)
    for path in package.rglob("*.py"):
        path.write_text(imports.sub(r"\1\2 cnnlab_old", path.read_text()))
    return target


def engines(data_dir: str | None, batches: int):
    """(old engine, new engine, the old batches, the new batches): the same images and labels."""
    import cnnlab_old.data as old_data
    from cnnlab_old.training.config import TrainConfig as OldConfig
    from cnnlab_old.training.torch_engine import TorchEngine as OldEngine

    from cnnlab.data import load_dataset, split_arrays
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.torch_engine import TorchEngine

    new_config, old_config = TrainConfig(data_dir=data_dir), OldConfig(data_dir=data_dir)
    dataset, images = load_dataset(new_config.dataset, data_dir, quiet=True)
    new_arrays = split_arrays(images, None, new_config.valid_size, new_config.seed)
    old_arrays = old_data.load_split(55_000, old_config.valid_size, old_config.seed, data_dir, quiet=True)
    n = new_config.batch_size * batches
    old = OldEngine(old_config, batches)
    old.initialize(old_arrays.train_x)
    new = TorchEngine(new_config, batches, dataset)
    new.initialize(dataset, new_arrays.train_x)
    size = new_config.batch_size

    def cut(engine, x, y):
        x, y = engine.to_native(x[:n]), engine.to_native(y[:n])
        return [(x[i : i + size], y[i : i + size]) for i in range(0, n, size)]

    return (
        old,
        new,
        cut(old, old_arrays.train_x, old_arrays.train_y),
        cut(new, new_arrays.train_x, new_arrays.train_y),
    )


def time_steps(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    old, new, old_batches, new_batches = engines(args.data_dir, args.block)
    first = [float(e.train_batch(*b[0])[0]) for e, b in ((old, old_batches), (new, new_batches))]
    same = "the same" if first[0] == first[1] else "DIFFERENT"
    print(f"first step's summed loss: old {first[0]!r}, new {first[1]!r} ({same})")
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for name, engine, batches in (("old", old, old_batches), ("new", new, new_batches)):
            start = time.perf_counter()
            for x, y in batches:
                engine.train_batch(x, y)
            engine.to_host([0.0])  # a device engine would sync here
            seconds[name].append((time.perf_counter() - start) / len(batches))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        each = ", ".join(f"{1000 * v:.2f}" for v in values)
        print(f"{name}: median {1000 * medians[name]:.2f} ms a step ({each})")
    print(f"new / old: {medians['new'] / medians['old']:.3f}x (load average {os.getloadavg()[0]:.1f})")


def train(args, pythonpath: str) -> None:
    results: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    for seed in args.seeds.split(","):
        for name, module in (("old", "cnnlab_old"), ("new", "cnnlab")):
            with tempfile.TemporaryDirectory() as out:
                run = Path(out) / "run"
                argv = [sys.executable, "-m", module, "train", "--seed", seed, "--out", str(run), "--quiet"]
                if args.data_dir:
                    argv += ["--data-dir", args.data_dir]
                env = {**os.environ, "PYTHONPATH": pythonpath}
                start = time.perf_counter()
                subprocess.run(argv, check=True, env=env, capture_output=True)
                wall = time.perf_counter() - start
                summary = json.loads((run / "summary.json").read_text())
                results[name].append((summary["test_accuracy"], wall))
                print(
                    f"seed {seed} {name}: test accuracy {summary['test_accuracy']:.2%}, {wall:.1f} s",
                    flush=True,
                )
    for name, rows in results.items():
        accuracy = statistics.median(a for a, _ in rows)
        wall = statistics.median(w for _, w in rows)
        print(f"{name}: median test accuracy {accuracy:.2%}, median wall {wall:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rev", default="9279214", help="the old version (default: main before the dataset layer)"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=20, help="steps per timed block")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train", action="store_true", help="also whole default runs of each")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = export_old(args.rev, Path(tmp))
        sys.path.insert(0, str(old))
        pythonpath = os.pathsep.join([str(old), str(ROOT / "src")])
        if args.train:
            train(args, pythonpath)
        else:
            time_steps(args)


if __name__ == "__main__":
    main()
