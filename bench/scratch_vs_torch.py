"""cnnlab.scratch against torch on this machine: prints time ratios (scratch / torch), float32.

    PYTHONPATH=src python bench/scratch_vs_torch.py [--batch-size 256] [--block 5] [--rounds 7] [--threads 2]
        [--cases convnet,vgg-mini,resnet-mini,bn,ops] [--profile]

Both run in this process with the same thread count (torch.set_num_threads, and threadpoolctl for
NumPy's BLAS). Timing: alternating BLOCKS of ``--block`` consecutive steps of each contender, the
order rotating each round, one warm-up block each first; a figure is the median over ``--rounds``
blocks of the time per step. Blocks, not single steps: alternating single steps slows torch far
more than scratch (each switch leaves the other library's idle threads spinning on the 2 cores; see
docs/results.md), while training runs one engine's steps back to back.

torch runs at its fastest honest float32 settings: both NCHW and channels_last are timed and the
faster is the reference (the other is printed too); no autocast, no torch.compile.

Cases: a whole training step (forward, cross-entropy, backward, SGD with momentum) of the notebook's
ConvNet, of vgg-mini and of resnet-mini; batch norm forward+backward at (256, 64, 14, 14) as it
sits in vgg-mini; single conv and pool layers. ``--profile`` adds where the time goes: the scratch
step per layer (forward and backward; inside residual blocks too) and torch's step per aten op.
A ratio below 1 means scratch is faster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import numpy as np

MODEL_CASES = ("convnet", "vgg-mini", "resnet-mini")  # registry models timed as a whole training step


def time_blocks(contenders: dict, block: int, rounds: int, threads: dict | None = None) -> dict[str, float]:
    """Median milliseconds per call of each contender, from alternating blocks of ``block`` calls.

    ``threads`` maps a contender to the thread count it runs with (the default elsewhere): torch's
    intra-op threads and NumPy's BLAS threads are set before each of its blocks, outside the timing.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = threads or {}
    default = torch.get_num_threads()

    def run_block(name):
        n = threads.get(name, default)
        torch.set_num_threads(n)
        with threadpool_limits(n, user_api="blas"):
            start = time.perf_counter()
            for _ in range(block):
                contenders[name]()
            return (time.perf_counter() - start) / block

    names = list(contenders)
    for name in names:  # warm-up: allocations, thread pools, oneDNN primitives
        run_block(name)
    times = defaultdict(list)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(run_block(name))
    torch.set_num_threads(default)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def model_step_contenders(name: str, n: int, rng) -> dict:
    """A training step of registry model ``name``: scratch, torch NCHW, torch channels_last."""
    import torch

    from cnnlab import scratch
    from cnnlab.models import build_model

    torch.manual_seed(0)
    theirs = build_model(name, (1, 28, 28), 10, "torch")
    ours = build_model(name, (1, 28, 28), 10, "numpy")
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    opt = scratch.optim.SGD(ours.parameters(), lr=1e-3, momentum=0.9)
    contenders = {"scratch": lambda: scratch.train_step(ours, opt, x, y)}
    for layout in (torch.contiguous_format, torch.channels_last):
        model = build_model(name, (1, 28, 28), 10, "torch").to(memory_format=layout)
        model.load_state_dict(theirs.state_dict())
        topt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        xt, yt = torch.from_numpy(x).contiguous(memory_format=layout), torch.from_numpy(y)

        def torch_step(model=model, topt=topt, xt=xt, yt=yt):
            topt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            topt.step()

        contenders["torch " + ("NHWC" if layout == torch.channels_last else "NCHW")] = torch_step
    return contenders


def with_one_thread(contenders: dict) -> tuple[dict, dict]:
    """The contenders again under the name "<name> x1", to run with one thread."""
    more = {**contenders, **{f"{name} x1": fn for name, fn in contenders.items()}}
    return more, {f"{name} x1": 1 for name in contenders}


def batch_norm_contenders(shape, rng) -> dict:
    """BatchNorm2d forward+backward in training mode; scratch gets its input as conv hands it on."""
    import torch

    from cnnlab.scratch import nn
    from cnnlab.scratch.windows import from_planes, to_planes

    x = rng.standard_normal(shape, dtype=np.float32)
    gy = rng.standard_normal(shape, dtype=np.float32)
    ours = nn.BatchNorm2d(shape[1])
    xs, gys = from_planes(to_planes(x)), from_planes(to_planes(gy))  # (C, H, W, N) memory

    def scratch_step():
        ours(xs)
        ours.backward(gys)

    contenders = {"scratch": scratch_step}
    for layout, label in ((torch.contiguous_format, "NCHW"), (torch.channels_last, "NHWC")):
        bn = torch.nn.BatchNorm2d(shape[1])
        xt = torch.from_numpy(x).contiguous(memory_format=layout).requires_grad_()
        gt = torch.from_numpy(gy).contiguous(memory_format=layout)
        contenders["torch " + label] = lambda bn=bn, xt=xt, gt=gt: bn(xt).backward(gt)
    return contenders


def layer_contenders(n, rng) -> list[tuple[str, dict]]:
    """The notebook ConvNet's conv layers and first max-pool, forward+backward."""
    import torch
    import torch.nn.functional as TF

    from cnnlab.scratch import nn
    from cnnlab.scratch.windows import from_planes, to_planes

    cases = []
    for c_in, c_out, hw, pad in [(1, 32, 28, 0), (32, 64, 13, 0), (64, 64, 14, 1)]:
        x = rng.standard_normal((n, c_in, hw, hw), dtype=np.float32)
        layer = nn.Conv2d(c_in, c_out, 3, padding=pad, bias=pad == 0, rng=0)
        xs = from_planes(to_planes(x))
        gy = np.ones(layer(xs).shape, np.float32)
        wt = torch.from_numpy(layer.weight.data).requires_grad_()
        bt = None if layer.bias is None else torch.from_numpy(layer.bias.data).requires_grad_()
        xt = torch.from_numpy(x).requires_grad_()
        cases.append(
            (
                f"conv {c_in}->{c_out} {hw}x{hw}{' pad 1 no bias' if pad else ''} fwd+bwd",
                {
                    "scratch": lambda layer=layer, xs=xs, gy=gy: (
                        layer.backward(gy) if layer(xs) is not None else 0
                    ),
                    "torch NCHW": lambda xt=xt, wt=wt, bt=bt, pad=pad: (
                        TF.conv2d(xt, wt, bt, padding=pad).sum().backward()
                    ),
                },
            )
        )
    x = np.maximum(rng.standard_normal((n, 32, 26, 26), dtype=np.float32), 0)
    pool, xs = nn.MaxPool2d(2), from_planes(to_planes(x))
    gy = np.ones((n, 32, 13, 13), np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    cases.append(
        (
            "max_pool2d 2x2 32x26x26 fwd+bwd",
            {
                "scratch": lambda: pool.backward(gy) if pool(xs) is not None else 0,
                "torch NCHW": lambda: TF.max_pool2d(xt, 2).sum().backward(),
            },
        )
    )
    return cases


def profile_scratch(name: str, n: int, rng, steps: int = 3) -> None:
    """Milliseconds per step in each layer's forward and backward (the optimizer and loss apart)."""
    from cnnlab import scratch
    from cnnlab.models import build_model

    model = build_model(name, (1, 28, 28), 10, "numpy")
    spent = defaultdict(float)
    # Every leaf layer, residual blocks' bodies included (a block's own time is its add and ReLU).
    leaves = [(path, m) for path, m in model.named_modules() if path and not m._modules]
    for index, layer in leaves:
        kind = type(layer).__name__
        for method in ("forward", "backward"):
            original = getattr(layer, method)

            def timed(arg, original=original, key=(index, kind, method), **kwargs):
                start = time.perf_counter()
                out = original(arg, **kwargs)
                spent[key] += time.perf_counter() - start
                return out

            object.__setattr__(layer, method, timed)
    opt = scratch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = rng.standard_normal((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)
    scratch.train_step(model, opt, x, y)
    spent.clear()
    start = time.perf_counter()
    for _ in range(steps):
        scratch.train_step(model, opt, x, y)
    total = 1000 * (time.perf_counter() - start) / steps
    print(f"\nscratch {name}, batch {n}: {total:.1f} ms per step; per layer (ms):")
    rows = defaultdict(dict)
    for (index, kind, method), seconds in spent.items():
        rows[(index, kind)][method] = 1000 * seconds / steps
    for (index, kind), t in rows.items():
        print(f"  {index:>9} {kind:18s} forward {t['forward']:7.1f}  backward {t['backward']:7.1f}")
    layers = sum(sum(t.values()) for t in rows.values())
    print(f"  loss, optimizer and the rest: {total - layers:.1f}")


def profile_torch(name: str, n: int, rng, steps: int = 3) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    step = model_step_contenders(name, n, rng)["torch NHWC"]
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    print(f"\ntorch {name} (channels_last), batch {n}: top ops by self CPU time per step (ms):")
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    for e in events:
        print(f"  {e.key:45s} {e.self_cpu_time_total / 1000 / steps:7.1f}")
    del torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--block", type=int, default=5, help="consecutive steps per timed block")
    parser.add_argument("--rounds", type=int, default=7, help="blocks per contender; the median is kept")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--cases", default=",".join([*MODEL_CASES, "bn", "ops"]))
    parser.add_argument("--profile", action="store_true", help="per-layer and per-op times")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(args.threads)
        blas = ", ".join(
            f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}" for i in threadpool_info()
        )
    except ImportError:
        blas = "threadpoolctl not installed; NumPy BLAS threads as configured"
    print(
        f"batch {args.batch_size}, {args.threads} threads, blocks of {args.block}, {args.rounds} rounds; "
        f"torch {torch.__version__}, numpy {np.__version__} ({blas})"
    )
    header = f"{'case':40s} {'scratch ms':>10s} {'torch ms':>9s} {'ratio':>6s}"
    print(header + "   every contender (ms; x1: one thread)")
    rng = np.random.default_rng(0)
    cases = args.cases.split(",")
    rows = []
    for name in MODEL_CASES:
        if name in cases:
            rows.append(
                (f"train step, {name}", *with_one_thread(model_step_contenders(name, args.batch_size, rng)))
            )
    if "bn" in cases:
        shape = (args.batch_size, 64, 14, 14)
        rows.append((f"batch norm fwd+bwd {shape}", *with_one_thread(batch_norm_contenders(shape, rng))))
    if "ops" in cases:
        rows += [(label, contenders, {}) for label, contenders in layer_contenders(args.batch_size, rng)]
    for label, contenders, threads in rows:
        ms = time_blocks(contenders, args.block, args.rounds, threads)
        same = min(v for k, v in ms.items() if k.startswith("torch") and k not in threads)
        print(f"{label:40s} {ms['scratch']:10.1f} {same:9.1f} {ms['scratch'] / same:6.2f}   ", end="")
        print(", ".join(f"{k} {v:.1f}" for k, v in ms.items()), flush=True)
        if threads:
            ours = min(v for k, v in ms.items() if k.startswith("scratch"))
            theirs = min(v for k, v in ms.items() if k.startswith("torch"))
            print(
                f"{'  best thread count of each':40s} {ours:10.1f} {theirs:9.1f} {ours / theirs:6.2f}",
                flush=True,
            )
    if args.profile:
        for name in MODEL_CASES:
            if name in cases:
                profile_scratch(name, args.batch_size, rng)
                profile_torch(name, args.batch_size, rng)


if __name__ == "__main__":
    main()
