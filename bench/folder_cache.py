"""Loading an image folder: the first load (decode, then keep the pixels) against the second (from the
cache), each in a fresh process, and what a hostile image in a folder costs before it is refused.

    cnnlab data export fashion-mnist /tmp/fmnist-png
    .venv/bin/python bench/folder_cache.py /tmp/fmnist-png

The cache goes to a temporary directory (``$CNNLAB_FOLDER_CACHE``), so the user's is left alone.
Each load is ``cnnlab.data.load_dataset(FOLDER)`` in a new process: wall time and how far its peak
resident memory (VmHWM) rose. The hostile row is a folder of eight small PNGs and one 5000x5000
16-bit PNG (47 KB on disk, 25 megapixels declared), read with ``image_size=28``: it must be
refused, and cost under 1 s and 200 MB (exit 1 otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import json, sys, time
def status(key):  # kB
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0])
import cnnlab.data as data
from cnnlab.errors import CnnlabError
before = status("VmRSS")
started = time.perf_counter()
try:
    data.load_dataset(sys.argv[1], image_size=int(sys.argv[2]) or None)
    refused = None
except CnnlabError as exc:
    refused = str(exc)
print(json.dumps({"seconds": time.perf_counter() - started, "mb": (status("VmHWM") - before) / 1024,
                  "refused": refused}))
"""


def load(folder: Path, cache: Path, image_size: int = 0) -> dict:
    env = {**os.environ, "CNNLAB_FOLDER_CACHE": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(image_size)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def hostile_folder(root: Path) -> Path:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for k in range(4):
            Image.new("L", (28, 28), 40 * k).save(root / label / f"{k}.png")
    Image.fromarray(np.full((5000, 5000), 40000, np.uint16)).save(root / "a" / "bomb.png", compress_level=9)
    return root


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> int:
    folder = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        off = Path(os.devnull)
        print(f"{'load':<34} {'s':>6} {'MB':>6}  load average")
        loads = (("no cache", off), ("first (decode, then keep)", cache), ("second (cache)", cache))
        row = "{:<34} {:6.2f} {:6.0f}  {}"
        for name, where in loads:
            result = load(folder, where)
            print(row.format(name, result["seconds"], result["mb"], loadavg()), flush=True)
        hostile = load(hostile_folder(Path(tmp) / "hostile"), off, image_size=28)
        print(row.format("hostile 5000x5000 16-bit PNG", hostile["seconds"], hostile["mb"], loadavg()))
        print(f"  {hostile['refused']}")
    ok = hostile["refused"] and hostile["seconds"] < 1 and hostile["mb"] < 200
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
