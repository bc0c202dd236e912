"""cnnlab.scratch against torch on this machine: prints time ratios (scratch / torch).

    PYTHONPATH=src python bench/scratch_vs_torch.py [--batch-size 512] [--repeats 7] [--threads N]

Both run in this process with the same thread count (torch.set_num_threads and, for NumPy's
BLAS, threadpoolctl when installed). Each figure is the median of ``--repeats`` runs after
one warm-up, scratch and torch alternating. Cases: the notebook ConvNet's two conv layers and
its 2x2 max-pool, forward and forward+backward, and one whole training step (forward,
cross-entropy, backward, SGD with momentum) at 28x28, float32. A ratio below 1 means scratch is faster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def median_ms(ours, theirs, repeats: int) -> tuple[float, float]:
    """Median milliseconds of each, run alternately so that load from other work on a shared
    machine falls on both alike; one warm-up each first."""
    ours(), theirs()  # warm-up: allocations, BLAS thread start
    times = ([], [])
    for _ in range(repeats):
        for fn, bucket in zip((ours, theirs), times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[0]), 1000 * statistics.median(times[1])


def as_in_network(x):
    """x (N, C, H, W) laid out as scratch layers hand it on: a view of (C, H, W, N) memory
    (see cnnlab/scratch/windows.py). Torch gets the same values, NCHW-contiguous."""
    from cnnlab.scratch.windows import from_planes, to_planes

    return from_planes(to_planes(x))


def conv_cases(n, rng):
    """(name, ours_fwd, ours_fwdbwd, torch_fwd, torch_fwdbwd) for conv and pool layers."""
    import torch
    import torch.nn.functional as TF

    from cnnlab.scratch import conv, pool
    from cnnlab.scratch import functional as F

    cases = []
    for c_in, c_out, hw in [(1, 32, 28), (32, 64, 13)]:
        x = as_in_network(rng.standard_normal((n, c_in, hw, hw), dtype=np.float32))
        w = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
        b = rng.standard_normal(c_out, dtype=np.float32)
        xt, wt, bt = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b))
        gy = np.ones((n, c_out, hw - 2, hw - 2), np.float32)

        def ours_bwd(x=x, w=w, b=b, gy=gy):
            x4, w4, b4, _, geo = conv._setup(x, w, b, 1, 0, 1, 1)
            out, cols = conv._forward(x4, w4, b4, geo)  # as nn.Conv2d does: reuse the windows
            conv._backward(gy, cols, x4.shape, w4, True, geo)

        def torch_bwd(xt=xt, wt=wt, bt=bt):
            TF.conv2d(xt, wt, bt).sum().backward()

        cases.append(
            (
                f"conv2d {c_in}->{c_out} {hw}x{hw}",
                lambda x=x, w=w, b=b: F.conv2d(x, w, b),
                ours_bwd,
                lambda xt=xt, wt=wt, bt=bt: TF.conv2d(xt.detach(), wt.detach(), bt.detach()),
                torch_bwd,
            )
        )
    x = as_in_network(np.maximum(rng.standard_normal((n, 32, 26, 26), dtype=np.float32), 0))
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)

    def ours_pool_bwd():
        x4, _, geo = pool._setup(x, "max_pool2d", 2, None, 0, 1, False)
        out, arg = pool._max_forward(x4, geo)
        pool._max_backward(np.ones(x4.shape[:2] + geo["out_hw"], np.float32), arg, x4.shape, geo)

    cases.append(
        (
            "max_pool2d 2x2 32x26x26",
            lambda: F.max_pool2d(x, 2),
            ours_pool_bwd,
            lambda: TF.max_pool2d(xt.detach(), 2),
            lambda: TF.max_pool2d(xt, 2).sum().backward(),
        )
    )
    return cases


def train_step_case(n, rng):
    import torch
    from torch import nn

    from cnnlab import scratch

    ours = scratch.models.build_seed(np.random.default_rng(0))
    theirs = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
        nn.ReLU(),
    )
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    xt, yt = torch.tensor(x), torch.tensor(y)
    opt = scratch.optim.SGD(ours.parameters(), lr=1e-3, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=1e-3, momentum=0.9)

    def torch_step():
        topt.zero_grad()
        nn.functional.cross_entropy(theirs(xt), yt).backward()
        topt.step()

    return ("train step, seed ConvNet", lambda: scratch.train_step(ours, opt, x, y), torch_step)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
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
        f"batch {args.batch_size}, {args.threads} threads, torch {torch.__version__}, "
        f"numpy {np.__version__} ({blas}), OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}"
    )
    print(f"{'case':32s} {'scratch ms':>11s} {'torch ms':>9s} {'ratio':>6s}")
    rng = np.random.default_rng(0)
    rows = []
    for name, fwd, fwdbwd, tfwd, tfwdbwd in conv_cases(args.batch_size, rng):
        rows += [(name + " fwd", fwd, tfwd), (name + " fwd+bwd", fwdbwd, tfwdbwd)]
    rows.append(train_step_case(args.batch_size, rng))
    for name, ours, theirs in rows:
        a, b = median_ms(ours, theirs, args.repeats)
        print(f"{name:32s} {a:11.1f} {b:9.1f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
