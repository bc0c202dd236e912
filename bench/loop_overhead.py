"""What cnnlab's training loop costs beyond the bare optimizer steps, on the same batches.

    .venv/bin/python bench/loop_overhead.py --model convnet --batch-size 256 --batches 40 --rounds 5

"bare" is the least a training step can be: forward under the run's precision, cross-entropy,
backward, AdamW, on batches already on the device (as the record scripts time it). "loop" is
``cnnlab.training.loop.train_one_epoch`` with the engine a run builds, on the same images and the
same options (``--ema 0`` and no augmentation by default, so both do the same arithmetic; add
``--ema 0.97`` to see what the EMA costs). They run in alternating blocks of ``--batches`` steps in
one process, and the figure is the ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from cnnlab.data import load_dataset, split_arrays
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import train_one_epoch
from cnnlab.training.torch_engine import TorchEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ema", type=float, default=0.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    config = TrainConfig(
        model=args.model, batch_size=args.batch_size, ema=args.ema, device=args.device, data_dir=args.data_dir
    )
    n = args.batch_size * args.batches
    dataset, images = load_dataset(config.dataset, args.data_dir, quiet=True)
    data = split_arrays(images, n, 0, 0)
    engine = TorchEngine(config, args.batches, dataset)
    native = engine.to_native(data.train_x)
    data.train_x = native
    order = np.arange(n)

    labels = engine.to_native(data.train_y)
    batches = [
        (native[i : i + args.batch_size], labels[i : i + args.batch_size])
        for i in range(0, n, args.batch_size)
    ]
    model, optimizer, loss_fn = engine.model, engine.optimizer, nn.CrossEntropyLoss()

    def bare() -> None:
        model.train()
        for x, y in batches:
            with engine.autocast():
                loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loss.item()  # wait for the device, as the loop's one sync does

    def loop() -> None:
        engine.start_epoch(1)
        train_one_epoch(engine, data, order, lambda k: None)

    def timed(fn) -> float:
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    bare(), loop()  # warm-up
    times: dict[str, list[float]] = {"bare": [], "loop": []}
    for _ in range(args.rounds):
        times["bare"].append(timed(bare))
        times["loop"].append(timed(loop))
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.model}, batch {args.batch_size}, {engine.describe()['device']}, {engine.precision}, "
        f"EMA {args.ema or 'off'}: bare {median['bare'] / args.batches * 1e3:.1f} ms/step, "
        f"loop {median['loop'] / args.batches * 1e3:.1f} ms/step, "
        f"loop/bare {median['loop'] / median['bare']:.3f}x "
        f"(median of {args.rounds} blocks of {args.batches} steps)"
    )


if __name__ == "__main__":
    main()
