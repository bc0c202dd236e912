"""``cnnlab data {list,where,download,verify,export}``: the datasets, found, fetched, checked, written out."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab import data
from cnnlab.commands.common import HelpFormatter, add_data_dir
from cnnlab.errors import DataError

NAME = "data"
EPILOG = """examples:
  cnnlab data list                          # the built-in datasets
  cnnlab data where                         # where Fashion-MNIST is, and why there
  cnnlab data download mnist                # fetch MNIST into the user cache
  cnnlab data verify cifar10 --data-dir DIR # checksums of CIFAR-10's files in DIR
  cnnlab data export digits digits-png      # write the digits out as a folder of PNGs
"""


def _dataset_argument(parser: argparse.ArgumentParser, what: str = "a built-in dataset") -> None:
    parser.add_argument(
        "dataset",
        nargs="?",
        default=data.DEFAULT,
        metavar="NAME",
        help=f"{what} (`cnnlab data list`; default: {data.DEFAULT})",
    )


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="list, find, download, verify and export datasets",
        description="List, find, download, verify and export datasets.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the built-in datasets: classes, image shape, sizes")
    where = actions.add_parser("where", help="say which directory is used and why")
    _dataset_argument(where)
    add_data_dir(where)
    download = actions.add_parser("download", help="download a dataset's files from its official mirrors")
    _dataset_argument(download)
    download.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help=f"where to put them (default: the user cache, {data.user_cache_dir('NAME')})",
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
    verify = actions.add_parser("verify", help="check a dataset's files: checksums and structure")
    _dataset_argument(verify, "a built-in dataset or a folder of images")
    add_data_dir(verify)
    export = actions.add_parser(
        "export", help="write a dataset out as a folder of PNGs, one subfolder per class (train/ and test/)"
    )
    export.add_argument("dataset", metavar="NAME", help="a built-in dataset or a folder of images")
    export.add_argument("target", metavar="DIR", help="the new folder (it must not exist, or be empty)")
    add_data_dir(export)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    actions = {"list": _list, "where": _where, "download": _download, "verify": _verify, "export": _export}
    return actions[args.action](args)


def _list(args) -> int:
    rows = [("name", "classes", "images (C x H x W)", "train", "test", "mirrored images")]
    for dataset in data.list_datasets():
        shape = " x ".join(map(str, dataset.input_shape))
        flips = "keep their class" if dataset.flips else "change class"
        rows.append(
            (
                dataset.name,
                str(dataset.num_classes),
                shape,
                f"{dataset.train_total:,}",
                f"{dataset.test_total:,}",
                flips,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print("\nor a folder of your own images: --dataset PATH (one subfolder per class)")
    return 0


def _where(args) -> int:
    source = data.get_source(args.dataset)
    directory, reason = source.locate(args.data_dir)
    if directory is None and getattr(source, "missing", None) is not None:
        raise DataError(
            f"{args.dataset} is {reason}; run `cnnlab data download {args.dataset}`, or pass --data-dir DIR"
        )
    print(f"{directory if directory is not None else args.dataset}\n  ({reason})")
    return 0


def _download(args) -> int:
    if args.retries < 1:
        raise DataError(f"--retries must be >= 1. Received: {args.retries}")
    source = data.get_source(args.dataset)
    if not hasattr(source, "download"):
        raise DataError(f"{args.dataset} needs no download: {source.locate()[1]}")
    target = Path(args.data_dir) if args.data_dir else data.user_cache_dir(source.name)
    kwargs = {"retries": args.retries, "timeout": args.timeout}
    if args.mirror:
        kwargs["mirrors"] = tuple(args.mirror)
    source.download(target, **kwargs)
    print(f"{source.name} is in {target}")
    return 0


def _verify(args) -> int:
    from cnnlab.data.registry import read_dataset

    source = data.get_source(args.dataset)
    directory, reason = source.locate(args.data_dir)
    if directory is None and getattr(source, "missing", None) is not None:
        raise DataError(f"{args.dataset} is {reason}; nothing to verify")
    print(f"{directory if directory is not None else args.dataset} ({reason})")
    checks = source.verify(directory)
    for name, ok, how in checks:
        print(f"  {'ok  ' if ok else 'BAD '} {name}: {how}")
    bad = sum(not ok for _, ok, _ in checks)
    if bad:
        raise DataError(
            f"{bad} file(s) in {directory} failed verification; delete them and run "
            f"`cnnlab data download {source.name}`"
        )
    _, images = read_dataset(source, directory)  # structure: sizes, labels, pairs
    print(
        f"all {len(checks)} verified: {len(images.train_labels):,} training and "
        f"{len(images.test_labels):,} test images"
    )
    return 0


def _export(args) -> int:
    from cnnlab.data.folder import export

    dataset, images = data.load_dataset(args.dataset, args.data_dir)
    target = export(dataset, images, Path(args.target))
    print(
        f"{dataset.title} is in {target}: train/ and test/, one folder per class, and "
        f"{target / 'dataset.json'}"
    )
    return 0
