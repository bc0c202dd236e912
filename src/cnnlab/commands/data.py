"""``cnnlab data {where,download,verify}``: find, fetch and check Fashion-MNIST."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab import data
from cnnlab.commands.common import HelpFormatter, add_data_dir
from cnnlab.errors import DataError

NAME = "data"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="find, download and verify Fashion-MNIST",
        description="Find, download and verify the Fashion-MNIST files.",
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    where = actions.add_parser("where", help="say which directory is used and why")
    add_data_dir(where)
    download = actions.add_parser("download", help="download the four files from the official mirrors")
    download.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help=f"where to put them (default: the user cache, {data.user_cache_dir()})",
    )
    download.add_argument(
        "--mirror",
        action="append",
        default=None,
        metavar="URL",
        help="a mirror to use instead of the official ones (repeatable; default: official mirrors)",
    )
    download.add_argument("--retries", type=int, default=3, help="attempts per mirror (default: 3)")
    download.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before a stalled connection fails (default: 30)"
    )
    verify = actions.add_parser("verify", help="check the files' checksums and structure")
    add_data_dir(verify)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return {"where": _where, "download": _download, "verify": _verify}[args.action](args)


def _where(args) -> int:
    directory, reason = data.locate(args.data_dir)
    if directory is None:
        raise DataError(f"Fashion-MNIST is {reason}; run `cnnlab data download`, or pass --data-dir DIR")
    print(f"{directory}\n  ({reason})")
    return 0


def _download(args) -> int:
    from cnnlab.data.download import MIRRORS, download_all

    if args.retries < 1:
        raise DataError(f"--retries must be >= 1. Received: {args.retries}")
    target = Path(args.data_dir) if args.data_dir else data.user_cache_dir()
    download_all(target, mirrors=tuple(args.mirror or MIRRORS), retries=args.retries, timeout=args.timeout)
    print(f"Fashion-MNIST is in {target}")
    return 0


def _verify(args) -> int:
    directory, reason = data.locate(args.data_dir)
    if directory is None:
        raise DataError(f"Fashion-MNIST is {reason}; nothing to verify")
    print(f"{directory} ({reason})")
    bad = 0
    for spec in data.FILES.values():
        ok, how = data.verify_file(directory / spec.name, spec)
        bad += not ok
        print(f"  {'ok  ' if ok else 'BAD '} {spec.name}: {how}")
    if bad:
        raise DataError(
            f"{bad} file(s) in {directory} failed verification; delete them and run `cnnlab data download`"
        )
    data.load_arrays(directory)  # structure: magic numbers, sizes, label ranges
    print("all four files verified")
    return 0
