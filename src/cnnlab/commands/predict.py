"""``cnnlab predict RUN_DIR IMAGE...``: classify photos with a trained run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cnnlab.commands.common import HelpFormatter, add_run_dir

NAME = "predict"
EPILOG = """Each image is made to look like the run's dataset first: its size and colour mode, and for
Fashion-MNIST, MNIST, KMNIST and the digits a light item on a black background, cropped to the
item and centred (other datasets' images are resized whole). For those, whether to invert is
decided from the image border (a light border means a dark item on light paper, as most photos
are); --invert or --no-invert overrides that. --save-input DIR writes the images the model saw.

A file that cannot be read gets an error line; the others are still classified, and the exit
code is 2.

examples:
  cnnlab predict runs/X shoe.jpg shirt.png
  cnnlab predict runs/X photos/*.jpg --json
  cnnlab predict runs/X scan.png --invert --save-input /tmp/seen
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="classify PNG or JPEG images with a trained run",
        description="Classify images with a trained run; print the top classes.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_run_dir(parser)
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files, any size or colour")
    polarity = parser.add_mutually_exclusive_group()
    polarity.add_argument(
        "--invert",
        dest="invert",
        action="store_true",
        default=None,
        help="the item is dark on a light background: invert it (default: decide from the border)",
    )
    polarity.add_argument(
        "--no-invert",
        dest="invert",
        action="store_false",
        help="the item is already light on a dark background: never invert (default: decide from the border)",
    )
    parser.add_argument(
        "--top", type=int, default=3, metavar="K", help="how many classes to show (default: 3)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text (default: off)"
    )
    parser.add_argument(
        "--save-input",
        default=None,
        metavar="DIR",
        help="also write each image as the model saw it, as a PNG, into DIR (default: none)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab import fileio
    from cnnlab.errors import ConfigError
    from cnnlab.runs.loader import load_run

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1. Received: {args.top}")
    loaded = load_run(args.run_dir)
    classes = loaded.dataset.num_classes
    if args.top > classes:
        raise ConfigError(f"--top must be between 1 and {classes}, the run's classes. Received: {args.top}")
    save_dir = fileio.require_writable_dir(args.save_input, "--save-input") if args.save_input else None
    names = saved_names(args.images, save_dir)
    results = []
    for path in args.images:
        results.append(_one(loaded, path, args, save_dir / names[path] if save_dir else None))
        if not args.json and "top" in results[-1]:
            print(_line(results[-1]), flush=True)  # flushed, so it interleaves with errors in order
    if args.json:
        print(json.dumps(results, indent=2))
    failed = sum("error" in r for r in results)
    if failed:
        print(f"cnnlab: error: {failed} of {len(results)} file(s) could not be classified", file=sys.stderr)
    return 2 if failed else 0


def saved_names(paths: list[str], directory: Path | None = None) -> dict[str, str]:
    """The PNG name each input's prepared image is saved under: its stem, numbered when two inputs share
    one (shirt.jpg and other/shirt.png -> shirt.png, shirt-2.png), so no input overwrites another, or
    when ``directory`` already holds that name (photo.png beside photo.jpg): a file this call did not
    write is never overwritten."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for path in dict.fromkeys(paths):
        stem, number = Path(path).stem, 1
        name = f"{stem}.png"
        while name in taken or (directory is not None and os.path.lexists(directory / name)):
            number += 1
            name = f"{stem}-{number}.png"
        taken.add(name)
        names[path] = name
    return names


def _one(loaded, path: str, args, save_as: Path | None) -> dict:
    """One file's result; a bad file becomes an error entry (and a line on stderr), not an exit."""
    from cnnlab.data.images import prepare, read_image
    from cnnlab.errors import CnnlabError
    from cnnlab.report.metrics import top_classes

    try:
        prepared = prepare(read_image(path, loaded.dataset.color), loaded.dataset, args.invert)
        if save_as is not None:
            _save_input(prepared.image, save_as)
    except CnnlabError as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return {"file": path, "error": str(exc)}
    top = top_classes(loaded.probabilities(prepared.image[None]), loaded.class_names, args.top)[0]
    saved = {"saved_input": str(save_as)} if save_as is not None else {}
    return {"file": path, "inverted": prepared.inverted, "top": top, **saved}


def _line(result: dict) -> str:
    classes = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in result["top"])
    return f"{result['file']}: {classes}" + ("  (inverted)" if result["inverted"] else "")


def _save_input(image, path: Path) -> None:
    import io

    from PIL import Image

    from cnnlab.fileio import write_atomic

    buffer = io.BytesIO()
    Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(buffer, format="PNG")
    write_atomic(path, lambda fh: fh.write(buffer.getvalue()))
