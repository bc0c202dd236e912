"""The GPU check in one go: the default run, `fast-gpu` and `best-gpu` (one seed each), the loop's
overhead against bare steps, and the bare-step throughput of every model, as one table.

    bash bench/gpu_check.sh                    # on a machine with a CUDA GPU: under 8 minutes on an H100
    bash bench/gpu_check.sh --smoke            # anywhere: tiny sizes on the CPU, to test the script

Each training is a fresh ``cnnlab train`` process, as a user starts it, so its seconds include
torch's import and the data loading (the run clock of metrics.csv). The test accuracy is the final
epoch's; the "to 9x%" columns read the per-epoch test column (``--eval-test-every-epoch``), which
is only reported, never used for a choice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from time_to_accuracy import run_preset, time_to

THRESHOLDS = (0.90, 0.93, 0.95, 0.96)
RUNS = {"default": [], "fast-gpu": ["--preset", "fast-gpu"], "best-gpu": ["--preset", "best-gpu"]}
# --smoke: a few hundred images and one epoch, so the whole script runs in a minute on a CPU.
SMOKE_RUN = [
    "--train-size",
    "384",
    "--valid-size",
    "128",
    "--epochs",
    "1",
    "--device",
    "cpu",
    "--threads",
    "2",
]


def train(options: list[str], data_dir: str | None) -> dict:
    """One fresh ``cnnlab train`` process at seed 0 (bench/time_to_accuracy.py's run_preset), with the
    seconds at which the per-epoch test accuracy first reached each threshold."""
    result = run_preset("default", 0, [*options, *(["--data-dir", data_dir] if data_dir else [])])
    history = result["history"]
    return {
        **result,
        "test": result["final"],
        "seconds": history[-1]["seconds"],
        "reached": {t: time_to(history, t) for t in THRESHOLDS},
        "epochs": len(history),
    }


def bare_step_ms(
    model_name: str, width: float, batch: int, device: torch.device, steps: int, blocks: int = 5
) -> float:
    """Median ms of one training step (bf16 autocast where native, channels_last, AdamW) on random data."""
    from cnnlab.models import build_model
    from cnnlab.training.torch_engine import native_bf16

    torch.manual_seed(0)
    model = build_model(model_name, (1, 28, 28), 10, width=width).to(
        device, memory_format=torch.channels_last
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 28, 28, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    bf16 = native_bf16(device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(min(3, blocks)):
        step()
    times = []
    for _ in range(blocks):  # blocks of steps: one sync per block, as training runs
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - start) / steps * 1e3)
    return statistics.median(times)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, to test the script")
    parser.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA_DIR"))
    parser.add_argument("--skip-training", action="store_true", help="only the bare-step table")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; run it on a GPU machine, or add --smoke to test it on the CPU")
        return 2
    device = torch.device("cpu" if args.smoke else "cuda")
    name = "CPU (smoke sizes)" if args.smoke else torch.cuda.get_device_name(0)
    print(f"# cnnlab GPU check on {name}, torch {torch.__version__}", flush=True)

    if not args.skip_training:
        print(
            "\n| run | test accuracy | epochs | precision | "
            + " | ".join(f"to {t:.0%}" for t in THRESHOLDS)
            + " | run clock | wall |"
        )
        print("|---|---|---|---|" + "---|" * len(THRESHOLDS) + "---|---|")
        for run, options in RUNS.items():
            result = train([*options, *(SMOKE_RUN if args.smoke else [])], args.data_dir)
            cells = " | ".join(seconds(result["reached"][t]) for t in THRESHOLDS)
            print(
                f"| {run} | {result['test']:.2%} | {result['epochs']} | {result['precision']} | {cells} "
                f"| {result['seconds']:.1f} s | {result['wall']:.1f} s |",
                flush=True,
            )

        loop = [sys.executable, str(Path(__file__).with_name("loop_overhead.py")), "--device", device.type]
        loop += (
            ["--batches", "3", "--rounds", "2", "--batch-size", "32"]
            if args.smoke
            else ["--batches", "100", "--rounds", "5"]
        )
        loop += ["--data-dir", args.data_dir] if args.data_dir else []
        print(
            "\nloop overhead: "
            + subprocess.run(loop, check=True, capture_output=True, text=True).stdout.strip()
        )

    from cnnlab.models import MODELS

    batches = (8,) if args.smoke else (256, 1024, 4096)
    steps, blocks = (1, 1) if args.smoke else (20, 5)
    print("\n| model | width | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|---|" + "---|" * len(batches))
    cases = [(m, 1.0) for m in MODELS] + [("vgg-mini", 3.0), ("resnet-mini", 2.0), ("resnet-mini", 3.0)]
    cases = cases[:2] if args.smoke else cases
    for model_name, width in cases:
        cells = []
        for batch in batches:
            ms = bare_step_ms(model_name, width, batch, device, steps, blocks)
            cells.append(f"{ms:.1f} ms ({ms * 60_000 / batch / 1e3:.2f} s/60k)")
        print(f"| {model_name} | {width:g} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
