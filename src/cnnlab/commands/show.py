"""``cnnlab show RUN_DIR {filters,features,pooling,invariance}``: pictures of a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab import fileio
from cnnlab.commands.common import HelpFormatter, add_data_dir, add_run_dir

NAME = "show"
WHAT = {
    "filters": "the first convolution's filters as a grid",
    "features": "the feature maps of every conv and pool layer for one test image",
    "pooling": "max pooling on a real feature map, with a close-up in numbers",
    "invariance": "the image shifted 0-4 px: how much each layer's output and the prediction change",
    "saliency": "where the model looks for one test image: gradient, Grad-CAM and occlusion maps over it",
}
EPILOG = (
    "pictures:\n"
    + "\n".join(f"  {k:<11} {v}" for k, v in WHAT.items())
    + """

examples:
  cnnlab show runs/X filters
  cnnlab show runs/X features --image 9         # test image 9, a sneaker
  cnnlab show runs/X invariance --out figures/
  cnnlab show runs/X saliency --image 9
"""
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="pictures of a trained run: filters, feature maps, pooling, invariance, saliency",
        description="Draw what a trained run's network does, as PNG files.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_run_dir(parser)
    parser.add_argument("what", choices=tuple(WHAT), metavar="{" + ",".join(WHAT) + "}", help="which picture")
    parser.add_argument(
        "--image", type=int, default=0, metavar="N", help="index of the test image (default: 0)"
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="where to write the PNGs (default: RUN_DIR/figures)"
    )
    add_data_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.runs.loader import load_run

    trained = load_run(args.run_dir)
    out = fileio.require_writable_dir(Path(args.out) if args.out else trained.path / "figures", "--out")
    if args.what == "filters":
        from cnnlab.inspect.features import plot_filters

        paths = [plot_filters(trained, out / "filters.png")]
    else:
        images, labels = trained.images("test", args.data_dir)
        image, label = _pick(images, labels, args.image)
        paths = _per_image(args.what, trained, images, image, label, args.image, out)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _pick(images, labels, index: int):
    from cnnlab.errors import ConfigError

    if not 0 <= index < len(labels):
        raise ConfigError(
            f"--image must be in 0..{len(labels) - 1} (the test set's indices). Received: {index}"
        )
    return images[index], int(labels[index])


def _per_image(what, trained, tests, image, label, index, out) -> list[Path]:
    if what == "features":
        from cnnlab.inspect.features import plot_features

        return plot_features(trained, image, label, index, out)
    if what == "pooling":
        from cnnlab.inspect.pooling import plot_pooling

        path, facts = plot_pooling(trained, image, label, index, out / f"pooling-{index}.png")
        (h, w), (ph, pw) = facts["map_shape"], facts["pooled_shape"]
        print(
            f"channel {facts['channel']}: a {h}x{w} feature map pooled to {ph}x{pw} "
            f"({100 * facts['kept']:.0f}% of the values kept, each the maximum of its window)"
        )
        return [path]
    if what == "saliency":
        from cnnlab.inspect.looks import plot_saliency

        path, facts = plot_saliency(trained, image, label, index, out / f"saliency-{index}.png")
        print(f"the maps explain {facts['class']}; Grad-CAM of layer {facts['layer']}, the last convolution")
        return [path]
    from cnnlab.inspect.invariance import SAMPLE, format_table, measure, plot_invariance

    result = measure(trained, image, tests[:SAMPLE])
    print(format_table(result, index))
    return [plot_invariance(trained, image, label, index, result, out / f"invariance-{index}.png")]
