"""``cnnlab compare``: optimizers and learning rates side by side, over several seeds."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter, add_config_options, explicit_options

NAME = "compare"
EPILOG = """examples:
  cnnlab compare --optimizers sgd,adam --seeds 3 --preset seed   # the notebook's exercise
  cnnlab compare --optimizers adamw --lrs 1e-3,3e-3,1e-2 --epochs 2
  cnnlab compare --resume runs/X-compare       # continue a stopped comparison

Without --lrs, an optimizer keeps the base config's --lr when the base config is for that
optimizer, else it gets its conventional rate (sgd 0.1, adam and adamw 0.001); the table says which.
"""


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="compare optimizers and learning rates over seeds",
        description="Train the same model and data under several optimizers and "
        "learning rates, over several seeds; write compare.csv and plots.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--optimizers",
        type=_names,
        default=argparse.SUPPRESS,
        metavar="LIST",
        help="optimizers, comma-separated (default: sgd,adam)",
    )
    parser.add_argument(
        "--lrs",
        type=_floats,
        default=argparse.SUPPRESS,
        metavar="LIST",
        help="learning rates, comma-separated, each tried with every optimizer (default: see below)",
    )
    parser.add_argument(
        "--seeds", type=int, default=argparse.SUPPRESS, help="seeds per configuration: 0..N-1 (default: 3)"
    )
    parser.add_argument(
        "--out",
        dest="compare_out",
        default=None,
        metavar="DIR",
        help="where to write the comparison (default: runs/<timestamp>-compare)",
    )
    # The old spelling, kept working but out of --help: every other command says --out.
    parser.add_argument("--compare-out", dest="compare_out", default=None, help=argparse.SUPPRESS)
    add_config_options(parser, exclude=("optimizer", "lr", "seed", "out"))
    parser.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue a stopped comparison: finished runs kept, the unfinished one resumed, the rest run "
        "(default: none)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.training.compare import make_plan, resume_comparison, run_comparison

    if args.resume:
        _refuse_options_beside_resume(args)
        result = resume_comparison(args.resume, log=_log)
    else:
        plan = make_plan(
            explicit_options(args),
            optimizers=getattr(args, "optimizers", ["sgd", "adam"]),
            lrs=getattr(args, "lrs", None),
            seeds=getattr(args, "seeds", 3),
            config_file=args.config,
        )
        result = run_comparison(plan, args.compare_out, log=_log)
    print()
    print(result)
    print(f"\ntable: {result.out / 'compare.csv'}\nplot:  {result.out / 'compare_loss.png'}")
    return 0


def _log(message: str) -> None:
    print(message, flush=True)


def _refuse_options_beside_resume(args: argparse.Namespace) -> None:
    from cnnlab.errors import ConfigError

    typed = [*explicit_options(args), *(k for k in ("optimizers", "lrs", "seeds") if hasattr(args, k))]
    typed += ["config"] * bool(args.config) + ["out"] * bool(args.compare_out)
    if typed:
        raise ConfigError(
            "--resume continues a comparison exactly as planned; drop the other options "
            f"({', '.join('--' + k.replace('_', '-') for k in typed)})"
        )
