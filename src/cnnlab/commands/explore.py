"""``cnnlab explore RUN_DIR...``: an interactive page inside trained runs, on a local web server."""

from __future__ import annotations

import argparse
import sys

from cnnlab.commands.common import HelpFormatter

NAME = "explore"
EPILOG = """The page: pick a test image (by index, by class, or a random mistake of the run), upload a
PNG or JPEG (prepared as `cnnlab predict` prepares it) or draw one; the arrow keys shift it by one
pixel. Every layer's feature maps are drawn in the order and with the names of `cnnlab summary`;
click a map or neuron for its close-up with the real numbers: a convolution's sums (animated
window by window), pooling's windows, an activation, batch norm, flatten, a dense neuron, the
softmax; its top test images; the same layer in another run. Beside them: where the model looks
(Grad-CAM, gradient, occlusion), the run's curves and filters, and a padding/stride/kernel widget.
With several runs, the same image goes through each. Ctrl+C stops the server.

A run still training is followed: its curves, filters and the current image's maps are redrawn as
each epoch's checkpoint lands (the server only reads the run directory). One that has not saved
its first epoch yet is waited for. `cnnlab train --follow` opens this page on the run it trains.

Only the run directories named here are served, on 127.0.0.1 unless --host says otherwise.

examples:
  cnnlab explore runs/X --open
  cnnlab explore runs/seed runs/convnet --port 8800
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="an interactive page inside trained runs, in the browser",
        description="Serve a local web page that shows what trained runs compute for an image.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "run_dirs", metavar="RUN_DIR", nargs="+", help="run directories made by `cnnlab train`"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on; any but 127.0.0.1 shows the runs to the network (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="the port to listen on; 0 picks a free one (default: 8765)"
    )
    parser.add_argument(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="open the page in the default web browser (default: --no-open)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="where the test images are (default: each run's own data directory, else search; "
        "never downloads)",
    )
    parser.set_defaults(func=run)


def wait_for_first_epochs(paths: list[str], poll: float = 0.5) -> None:
    """Wait for every run that has started training (its config.json is there) but saved no epoch."""
    import time
    from pathlib import Path

    from cnnlab.training.rundir import CHECKPOINT, CONFIG

    waiting = [
        Path(p) for p in paths if (Path(p) / CONFIG).is_file() and not (Path(p) / CHECKPOINT).is_file()
    ]
    for path in waiting:
        print(f"cnnlab explore: waiting for {path.name}'s first epoch to be saved (Ctrl+C stops)", flush=True)
    while waiting:
        time.sleep(poll)
        waiting = [p for p in waiting if not (p / CHECKPOINT).is_file()]


def run(args: argparse.Namespace) -> int:
    import threading
    import webbrowser

    from cnnlab.errors import ConfigError
    from cnnlab.inspect.explorer.guard import allowed_hosts
    from cnnlab.inspect.explorer.listen import bind, serve, urls
    from cnnlab.inspect.explorer.served import load_runs

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535. Received: {args.port}")
    wait_for_first_epochs(args.run_dirs)
    runs = load_runs(args.run_dirs, args.data_dir)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    url, others = urls(sock)
    if allowed_hosts(sock.getsockname()[0]) is None:
        print(
            f"cnnlab: warning: listening on {args.host}: anyone who can reach this machine on port {port} "
            "can see these runs",
            file=sys.stderr,
        )
    for i, served in enumerate(runs):
        print(f"run {i}: {served.name} ({served.model}); test images: {served.tests_note}")

    def ready():
        print(f"cnnlab explore: {url}  (Ctrl+C stops)", flush=True)
        if others:
            print(f"cnnlab explore: from other machines: {', '.join(others)}", flush=True)
        if args.open:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    serve(runs, sock, ready)
    print("cnnlab explore: stopped", flush=True)
    return 0
