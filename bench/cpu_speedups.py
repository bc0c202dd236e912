"""Which CPU speed-ups help a training step: channels_last, bf16 autocast, torch.compile, threads, batch.

    .venv/bin/python bench/cpu_speedups.py --models convnet,vgg-mini

Each variant runs full training steps (forward, backward, AdamW) on random 28x28 batches; the
figure is images per second, median of several timed steps, and its ratio to plain fp32 NCHW at
batch 256 measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from cnnlab.models import build_model
from cnnlab.training.torch_engine import native_bf16


def make_step(model_name: str, batch: int, channels_last: bool, bf16: bool, compile_: bool):
    """A closure running one training step (forward, backward, AdamW) of this variant."""
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(model_name, (1, 28, 28), 10).to(memory_format=layout)
    forward = torch.compile(model) if compile_ else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def measure(model_name: str, variants: dict, rounds: int, skip_compile: bool, threads: int) -> dict:
    """Images per second per variant: the variants take turns, one step each per round, so load from
    other work on a shared machine falls on all of them alike; the median step time is used."""
    steps, times = {}, {}
    for name, (batch, cl, bf16, compile_, n_threads) in variants.items():
        if compile_ and skip_compile:
            continue
        try:
            steps[name] = make_step(model_name, batch, cl, bf16, compile_)
            torch.set_num_threads(n_threads or threads)
            for _ in range(3):  # warm-up, and compilation
                steps[name]()
        except Exception as exc:  # torch.compile needs a working C++ toolchain
            print(f"  {name:<34} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
            steps.pop(name, None)
        times[name] = []
    for _ in range(rounds):
        for name, step in steps.items():
            torch.set_num_threads(variants[name][4] or threads)
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return {name: variants[name][0] / statistics.median(times[name]) for name in steps}


VARIANTS = {  # name: (batch, channels_last, bf16, compile, threads or None for all)
    "fp32 NCHW (reference)": (256, False, False, False, None),
    "channels_last": (256, True, False, False, None),
    "bf16 autocast": (256, False, True, False, None),
    "bf16 + channels_last": (256, True, True, False, None),
    "bf16 + channels_last + compile": (256, True, True, True, None),
    "bf16 + channels_last, 1 thread": (256, True, True, False, 1),
    "bf16 + channels_last, batch 128": (128, True, True, False, None),
    "bf16 + channels_last, batch 512": (512, True, True, False, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="convnet,vgg-mini")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, native bf16: {native_bf16(torch.device('cpu'))}")
    for model_name in args.models.split(","):
        print(f"\n{model_name} (median of {args.rounds} interleaved rounds)")
        results = measure(model_name, VARIANTS, args.rounds, args.skip_compile, threads)
        reference = results[next(iter(results))]
        for name, ips in results.items():
            print(f"  {name:<34} {ips:8.0f} img/s  {ips / reference:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
