"""``cnnlab train``: options built from TrainConfig, so the CLI and the config never disagree."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter, add_config_options, explicit_options
from cnnlab.training.config import PRESETS

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


def run(args: argparse.Namespace) -> int:
    from cnnlab.training import entry
    from cnnlab.training import run as runner

    log = (lambda msg: None) if args.quiet else print
    follower = Follower(log) if args.follow else None
    session = runner.Session(log=follower or log, quiet=args.quiet, started=getattr(args, "started", None))
    try:
        # An empty --config or --resume ("") counts as not given.
        start = entry.plan(explicit_options(args), args.config or None, args.resume or None)
        if follower and isinstance(start, entry.Resume):  # a new run announces its directory itself
            follower.start(str(start.run_dir))
        result = start.run(session)
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
