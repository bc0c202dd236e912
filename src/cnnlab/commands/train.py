"""``cnnlab train``: options built from TrainConfig, so the CLI and the config never disagree."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from cnnlab.commands.common import HelpFormatter
from cnnlab.training.config import FIELDS, PRESETS, TrainConfig

NAME = "train"
EPILOG = (
    """presets (explicit options override them):
"""
    + "\n".join(
        f"  {name:<11} {', '.join(f'{k}={v}' for k, v in values.items())}" for name, values in PRESETS.items()
    )
    + """

examples:
  cnnlab train                               # convnet-pool-bn, about a minute on 2 cores
  cnnlab train --preset seed                 # the notebook's 30-epoch run, exactly
  cnnlab train --preset fast-cpu             # 93% test accuracy within a minute on 2 cores
  cnnlab train --dataset digits              # scikit-learn's 8x8 digits: no download
  cnnlab train --dataset my-photos/ --image-size 32   # a folder, one subfolder per class
  cnnlab train --model nets.py:build         # your own network: build(input_shape=, num_classes=)
  cnnlab train --optimizer sgd --lr 0.05 --epochs 8
  cnnlab train --config runs/X/config.json   # rerun a saved configuration
  cnnlab train --resume runs/X               # continue an interrupted run
  cnnlab train --resume runs/X --epochs 12   # train a finished run further, to 12 epochs in all
  cnnlab train --follow                      # and watch it learn in the browser
"""
)


def _betas(text: str) -> tuple[float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2, got {text!r}") from None
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2, got {text!r}")
    return values


def _type_of(field: dataclasses.Field):
    """The argparse type for a field, from its annotation (``int | None`` -> int)."""
    if field.name == "betas":
        return _betas
    hint = typing.get_type_hints(TrainConfig)[field.name]
    candidates = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return candidates[0]


def add_config_options(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """One option per TrainConfig field (and --config); ``explicit_options`` reads back what was typed."""
    for field in dataclasses.fields(TrainConfig):
        if field.name in exclude:
            continue
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {_show(field.default)})"
        # SUPPRESS keeps unset options out of the namespace, so only what the user typed overrides.
        if isinstance(field.default, bool):
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            parser.add_argument(flag, action=action, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(
                flag,
                type=_type_of(field),
                default=argparse.SUPPRESS,
                choices=_static_choices(field),
                help=help_text,
                metavar=None if _static_choices(field) else field.name.upper(),
            )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a saved config.json to start from; explicit options override it (default: none)",
    )


def _static_choices(field: dataclasses.Field) -> tuple[str, ...] | None:
    """argparse's choices, from the field's Check; a registry read at check time (models, presets)
    is left to validate(), whose message lists the names."""
    choices = field.metadata["check"].choices
    return choices if isinstance(choices, tuple) else None


def explicit_options(args: argparse.Namespace) -> dict:
    """The config fields the user typed (unset options are absent, thanks to SUPPRESS)."""
    return {name: getattr(args, name) for name in FIELDS if hasattr(args, name)}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="train a model and save a run directory",
        description="Train a model on a dataset (Fashion-MNIST by default) and save a run directory "
        "(config, metrics, checkpoint, plots, report).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_config_options(parser)
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its last complete epoch; with --epochs N, train a finished "
        "run further to N epochs in all (default: none)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final result (default: off)")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="open `cnnlab explore` on the run in the browser as it trains; it redraws at each epoch "
        "and goes on after training until Ctrl+C (default: off)",
    )
    parser.set_defaults(func=run)


def _rerun_gets_a_new_directory(explicit: dict, config_file: str | None) -> dict:
    """``--config RUN/config.json`` reruns a saved run: the ``out`` it recorded is that run's own
    directory, so unless --out is given the rerun gets a new one instead of being refused."""
    from pathlib import Path

    from cnnlab.training.config import read_config_file

    if not config_file or "out" in explicit:
        return explicit
    saved_out = read_config_file(config_file).get("out")
    if isinstance(saved_out, str) and Path(saved_out).is_dir() and any(Path(saved_out).iterdir()):
        return {**explicit, "out": None}
    return explicit


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.training import run as runner
    from cnnlab.training.config import resolve

    explicit = explicit_options(args)
    log = (lambda msg: None) if args.quiet else print
    follower = Follower(log) if args.follow else None
    session = runner.Session(log=follower or log, quiet=args.quiet, started=getattr(args, "started", None))
    try:
        if args.resume:
            others = [k for k in explicit if k != "epochs"]
            if others or args.config:
                raise ConfigError(
                    "--resume continues a run as configured (and --epochs trains it further); drop the "
                    f"other options ({', '.join('--' + k.replace('_', '-') for k in others) or '--config'})"
                )
            if follower:
                follower.start(args.resume)
            result = runner.resume(args.resume, session, epochs=explicit.get("epochs"))
        else:
            config = resolve(_rerun_gets_a_new_directory(explicit, args.config), args.config)
            result = runner.train(config, session)
    except BaseException:
        if follower:
            follower.stop()
        raise
    _report(args, result)
    if follower:
        follower.wait()
    return 0


class Follower:
    """A log for the run's Session that, once the run names its directory, starts
    `cnnlab explore RUN_DIR --open` beside the training: a process of its own that only reads
    the run directory."""

    PREFIX = "run directory: "  # how training.run announces the directory it claimed

    def __init__(self, log):
        self.log, self.proc = log, None

    def __call__(self, message: str) -> None:
        self.log(message)
        if self.proc is None and message.startswith(self.PREFIX):
            self.start(message[len(self.PREFIX) :])

    def start(self, run_dir: str) -> None:
        import subprocess
        import sys

        argv = [sys.executable, "-m", "cnnlab", "explore", str(run_dir), "--port", "0", "--open"]
        self.proc = subprocess.Popen(argv)

    def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)

    def wait(self) -> None:
        """After training: the page stays up until Ctrl+C, which stops both."""
        if self.proc is None:
            return
        print("cnnlab train: the explorer goes on; Ctrl+C stops it", flush=True)
        try:
            self.proc.wait()
        except KeyboardInterrupt:
            self.stop()


def _report(args: argparse.Namespace, result) -> None:
    from cnnlab.training.distributed import from_environment

    if not from_environment().is_main:  # under torchrun, rank 0 speaks for all
        return
    if not args.quiet:
        print()
        print(result.report)
    early = result.summary.get("early_stopping")
    if early:
        verb = "stopped early" if early["stopped_early"] else "ran all epochs"
        print(
            f"early stopping: {verb} after epoch {result.summary['epochs']}; "
            f"restored the best weights, from epoch {early['best_epoch']}"
        )
    print(f"test accuracy: {result.summary['test_accuracy']:.2%}")
    print(f"run saved to: {result.run_dir}", flush=True)
