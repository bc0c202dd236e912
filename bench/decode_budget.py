"""What one image decode costs, for the hostile files a server may be sent: time and peak memory.

    .venv/bin/python bench/decode_budget.py

Each file is small on the wire and large when decoded: PNGs of uniform pixels at and over
``cnnlab.data.decode``'s pixel cap in each costly mode (16-bit, RGBA, paletted with transparency),
baseline and progressive JPEGs of up to 20,000 x 20,000 pixels, a phone-style MPO, and one-pixel
stripes 30,000 and 100,000 pixels long (issue 25: once 7.3 GB in `cnnlab predict`). Each is
decoded once, by ``cnnlab.data.decode.decode`` (the path of `cnnlab predict` and the explorer),
in a fresh process of its own, which reports its wall time and how far its peak resident memory
(VmHWM) rose over what it held just before the decode; "+28x28" is the decode and `cnnlab
predict`'s preparation after it (``prepare`` for Fashion-MNIST) together. A refused file costs only its
header. The reference row is a plain 28x28 PNG. Exit 1 if any file under 1 MB takes 1 s or 200 MB
or more.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

from cnnlab.data import decode as budget

CHILD = """
import json, sys, time
from cnnlab.data.decode import decode
from cnnlab.errors import ImageError
# imported before measuring
import numpy, PIL.Image, PIL.PngImagePlugin, PIL.JpegImagePlugin, PIL.MpoImagePlugin
def status(key):  # kB; VmHWM, unlike ru_maxrss, starts afresh at exec
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0])
data = open(sys.argv[1], "rb").read()
before = status("VmRSS")
started = time.perf_counter()
try:
    decoded = decode(data, sys.argv[2], name="the file")
    shape, refused = list(decoded.shape), None
except ImageError as exc:
    shape, refused = None, str(exc)
seconds = time.perf_counter() - started
if shape and sys.argv[2] == "L":  # and what predict does next: the 28x28 Fashion-MNIST image
    from cnnlab.data.idx_datasets import FASHION_MNIST
    from cnnlab.data.images import prepare

    prepare(decoded, FASHION_MNIST.dataset)
prepared = time.perf_counter() - started
grown = status("VmHWM") - before
facts = {"seconds": seconds, "prepared": prepared, "mb": grown / 1024}
print(json.dumps({**facts, "shape": shape, "refused": refused}))
"""


def png(mode: str, side: int, size: tuple[int, int] | None = None) -> bytes:
    size = size or (side, side)
    if mode == "I;16":
        image = Image.fromarray(np.full(size[::-1], 40000, np.uint16))
    elif mode == "P":
        image = Image.new("P", size, 3)
        image.info["transparency"] = 0
    else:
        image = Image.new(mode, size, 200)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def jpeg(side: int, mode: str = "RGB", progressive: bool = False, fmt: str = "JPEG") -> bytes:
    image = Image.new(mode, (side, side), "gray" if mode == "RGB" else 128)
    buffer = io.BytesIO()
    extra = {"save_all": True, "append_images": [image.copy()]} if fmt == "MPO" else {}
    image.save(buffer, format=fmt, quality=50, progressive=progressive, **extra)
    return buffer.getvalue()


def cases() -> dict[str, bytes]:
    cap = int(budget.MAX_PIXELS**0.5)
    progressive_cap = int(budget.MAX_PROGRESSIVE_PIXELS**0.5)
    return {
        "28x28 PNG (reference)": png("L", 28),
        f"16-bit PNG {cap}^2 (at the cap)": png("I;16", cap),
        f"RGBA PNG {cap}^2 (at the cap)": png("RGBA", cap),
        f"paletted PNG {cap}^2, transparency": png("P", cap),
        "16-bit PNG 5000^2 (over the cap)": png("I;16", 5000),
        "16-bit PNG 20000^2 (over the cap)": png("I;16", 20000),
        "baseline JPEG 8000^2": jpeg(8000),
        "baseline JPEG 20000^2, gray": jpeg(20000, "L"),
        f"progressive JPEG {progressive_cap}^2": jpeg(progressive_cap, progressive=True),
        "progressive JPEG 8000^2 (over the cap)": jpeg(8000, progressive=True),
        "MPO 4000x4000, two frames": jpeg(4000, fmt="MPO"),
        "PNG 30000x3, a one-pixel stripe": png("L", 0, (30000, 3)),
        "PNG 100000x3, a one-pixel stripe": png("L", 0, (100000, 3)),
    }


def measure(data: bytes, mode: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".img") as fh:
        fh.write(data)
        fh.flush()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, fh.name, mode], capture_output=True, text=True, check=True
        )
    return json.loads(out.stdout)


def main() -> int:
    print(f"caps: {budget.MAX_PIXELS:,} pixels, {budget.MAX_PROGRESSIVE_PIXELS:,} for progressive JPEGs,")
    print(f"longest side {budget.MAX_SIDE}, {budget.MAX_CONCURRENT} decodes at once")
    row = "{:<40} {:>7} {:>5} {:>8} {:>9} {:>5}  {}"
    print(row.format("file", "KB", "mode", "decode s", "+28x28 s", "MB", "result"))
    failed = 0
    for name, data in cases().items():
        for mode in ("L", "RGB"):
            result = measure(data, mode)
            outcome = "refused" if result["refused"] else "x".join(map(str, result["shape"]))
            size, seconds, mb = f"{len(data) / 1024:.0f}", f"{result['seconds']:.3f}", f"{result['mb']:.0f}"
            prepared = f"{result['prepared']:.3f}" if mode == "L" and result["shape"] else ""
            print(row.format(name, size, mode, seconds, prepared, mb, outcome), flush=True)
            if len(data) < 1024 * 1024 and (result["prepared"] >= 1 or result["mb"] >= 200):
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
