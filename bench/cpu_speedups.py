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
from cnnlab.train.engine import native_bf16


def images_per_second(model_name: str, batch: int, channels_last: bool, bf16: bool, compile_: bool,
                      threads: int, steps: int = 6) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(model_name).to(memory_format=layout)
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

    for _ in range(3 if compile_ else 2):  # warm-up (and compilation)
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


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
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, native bf16: {native_bf16(torch.device('cpu'))}")
    for model_name in args.models.split(","):
        print(f"\n{model_name}")
        reference = None
        for name, (batch, cl, bf16, compile_, n_threads) in VARIANTS.items():
            if compile_ and args.skip_compile:
                continue
            try:
                ips = images_per_second(model_name, batch, cl, bf16, compile_, n_threads or threads)
            except Exception as exc:  # torch.compile needs a working C++ toolchain
                print(f"  {name:<34} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
                continue
            reference = reference or ips
            print(f"  {name:<34} {ips:8.0f} img/s  {ips / reference:5.2f}x", flush=True)
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
