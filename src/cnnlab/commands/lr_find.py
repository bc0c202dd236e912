"""``cnnlab lr-find``: an exponential learning-rate sweep, its plot and a suggested rate."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter, add_config_options, explicit_options

NAME = "lr-find"
EPILOG = """example:
  cnnlab lr-find --model convnet --optimizer adamw     # then: cnnlab train --lr <suggested>

The suggestion always lies below the rate of the lowest loss: the middle of the longest
fall of the smoothed loss before it ("valley", as fastai's lr_find), else that rate / 10.
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
    from cnnlab.training.config import resolve
    from cnnlab.training.lr_find import SweepRange, find_lr

    rates = SweepRange(args.start_lr, args.end_lr, args.steps)  # refused before any work when wrong
    config = resolve(explicit_options(args), args.config)
    found = find_lr(config, rates, log=lambda message: None)
    result = found.sweep
    print(f"swept {len(result.lrs)} steps from {result.lrs[0]:.1e} to {result.lrs[-1]:.1e}")
    if result.suggestion is None:
        print("the loss never fell, so there is no rate to suggest; raise --end-lr or --steps")
    else:
        print(f"lowest smoothed loss at learning rate {result.minimum:.2g}")
        print(f"suggested learning rate: {result.suggestion:.2g} ({result.rule})")
    print(f"plot: {found.out / 'lr_find.png'}\ntable: {found.out / 'lr_find.csv'}")
    return 0
