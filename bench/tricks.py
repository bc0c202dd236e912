"""Which training tricks buy accuracy on a short recipe: each variant against the same baseline.

    .venv/bin/python bench/tricks.py --epochs 5 --train-size 20000 --seeds 1

Every variant is a fresh ``cnnlab train`` process (the same as a user's run) on the baseline recipe
plus the variant's options. Tricks that are not cnnlab options (yet) are applied by patching the
engine in that process only (``PATCHES``), so a trick is measured before it earns an option. The
figure is the final epoch's test accuracy (no picking on the test set) and the run's seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BASELINE = ["--model", "vgg-mini", "--translate", "1", "--hflip", "--label-smoothing", "0.1"]
BASELINE += ["--lr", "6e-3", "--weight-decay", "5e-2", "--betas", "0.9,0.999", "--pct-start", "0.15"]
BASELINE += ["--ema", "0.99", "--batch-size", "256", "--no-whiten"]  # pinned: the defaults when measured

VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "no label smoothing": ["--label-smoothing", "0"],
    "label smoothing 0.2": ["--label-smoothing", "0.2"],
    "no EMA": ["--ema", "0"],
    "flip TTA": ["--tta"],
    "flip + shift TTA": ["--tta", "--tta-shift", "1"],
    "reflect padding": ["--pad-mode", "reflect"],
    "translate 2 reflect": ["--translate", "2", "--pad-mode", "reflect"],
    "cutout 8": ["--cutout", "8"],
    "resnet-mini": ["--model", "resnet-mini"],
    "vgg-mini width 1.5": ["--width", "1.5"],
    "Dirac init": ["@dirac"],
    "batch-norm lr x8": ["@bn_lr"],
    "Nesterov SGD": ["@nesterov", "--optimizer", "sgd", "--lr", "0.1", "--weight-decay", "5e-4"],
    "patch-whitening init": ["--whiten"],
    "patch-whitening + no EMA": ["--whiten", "--ema", "0"],
}

# Engine patches for tricks that are not options, applied in the training process before it starts.
PATCHES = {
    "dirac": """
import torch
from cnnlab.training import torch_engine
build = torch_engine.build_model
def build_with_identity(*args, **kwargs):
    model = build(*args, **kwargs)
    with torch.no_grad():  # each 3x3 conv starts as (near) the identity on its first c_in channels
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.out_channels >= m.in_channels:
                m.weight[: m.in_channels] += torch.nn.init.dirac_(torch.empty_like(m.weight[: m.in_channels]))
    return model
torch_engine.build_model = build_with_identity
""",
    "bn_lr": """
import torch
from cnnlab.training import torch_engine
build = torch_engine.build_optimizer
def with_fast_norms(config, params):
    params = list(params)
    norms = [p for p in params if p.dim() == 1 and p.shape[0] != 10]  # batch-norm scales and shifts
    rest = [p for p in params if not (p.dim() == 1 and p.shape[0] != 10)]
    optimizer = build(config, rest)
    optimizer.add_param_group({"params": norms, "lr": config.lr * 8, "weight_decay": 0.0})
    return optimizer
torch_engine.build_optimizer = with_fast_norms
""",
    "nesterov": """
import torch
from cnnlab.training import torch_engine
def nesterov(config, params):
    decay = config.weight_decay
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=decay)
torch_engine.build_optimizer = nesterov
""",
}

LAUNCH = "import sys\n{patches}\nfrom cnnlab.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def run_variant(options: list[str], common: list[str], seed: int) -> dict:
    patches = [PATCHES[o[1:]] for o in options if o.startswith("@")]
    flags = [o for o in options if not o.startswith("@")]
    with tempfile.TemporaryDirectory() as tmp:
        program = LAUNCH.format(patches="\n".join(patches))
        command = [sys.executable, "-c", program, "train", "--quiet", "--out", f"{tmp}/run"]
        command += [*common, "--seed", str(seed), *BASELINE, *flags]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        summary = json.loads(Path(f"{tmp}/run/summary.json").read_text())
    return {"test": summary["test_accuracy"], "seconds": summary["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    args = parser.parse_args()
    common = ["--epochs", str(args.epochs), "--train-size", str(args.train_size)]
    print(f"baseline: {' '.join(BASELINE)} {' '.join(common)}; median of {args.seeds} seed(s)", flush=True)
    base = None  # the differences are against "baseline", when it is among the variants run
    for name in args.variants.split(","):
        runs = [
            run_variant(VARIANTS[name], common, seed)
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
        test = statistics.median(r["test"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        base = test if name == "baseline" else base
        difference = f"({test - base:+.2%})" if base is not None else ""
        print(f"{name:<24} test {test:.2%}  {difference:>9}  {seconds:6.0f} s", flush=True)


if __name__ == "__main__":
    main()
