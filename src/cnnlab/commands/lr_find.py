"""``cnnlab lr-find``: an exponential learning-rate sweep, its plot and a suggested rate."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter
from cnnlab.commands.train import add_config_options, explicit_options
from cnnlab.errors import ConfigError

NAME = "lr-find"
EPILOG = """example:
  cnnlab lr-find --model convnet --optimizer adamw     # then: cnnlab train --lr <suggested>

With a one-cycle schedule the suggestion is a good peak rate; for a constant schedule take
about a third of it.
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="sweep the learning rate and suggest one",
        description="The learning-rate range test: train while the rate grows "
        "exponentially, plot the loss, suggest a rate.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--start-lr", type=float, default=1e-6, help="first rate (default: 1e-06)")
    parser.add_argument("--end-lr", type=float, default=1.0, help="last rate (default: 1.0)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps in the sweep (default: 100)")
    add_config_options(parser, exclude=("epochs", "schedule", "lr"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.data.arrays import load_split
    from cnnlab.runs import layout as rundir
    from cnnlab.training.config import resolve
    from cnnlab.training.lr_find import plot_sweep, sweep

    if not 0 < args.start_lr < args.end_lr:
        raise ConfigError(
            f"--start-lr must be > 0 and below --end-lr. Received: {args.start_lr}, {args.end_lr}"
        )
    if args.steps < 5:
        raise ConfigError(f"--steps must be >= 5. Received: {args.steps}")
    config = resolve(explicit_options(args), args.config)
    out = rundir.new_run_dir(config.out, "lr-find")
    config.save(out / rundir.CONFIG)
    arrays = load_split(config.resolved_train_size, config.valid_size, config.seed, config.data_dir)
    result = sweep(config, arrays, steps=args.steps, start=args.start_lr, end=args.end_lr)
    rundir.write_csv(
        out / "lr_find.csv",
        ("lr", "loss", "smoothed_loss"),
        [
            {"lr": a, "loss": b, "smoothed_loss": c}
            for a, b, c in zip(result.lrs, result.raw_losses, result.losses)
        ],
    )
    plot_sweep(
        result, out / "lr_find.png", title=f"Learning-rate range test: {config.model}, {config.optimizer}"
    )
    print(f"swept {len(result.lrs)} steps from {result.lrs[0]:.1e} to {result.lrs[-1]:.1e}")
    if result.suggestion is None:
        print("too few steps before the loss exploded to suggest a rate; lower --end-lr or raise --steps")
    else:
        print(f"suggested learning rate: {result.suggestion:.2g}")
    print(f"plot: {out / 'lr_find.png'}\ntable: {out / 'lr_find.csv'}")
    return 0
