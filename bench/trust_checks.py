"""Two figures for docs/results.md ("Checks") about a trained run: ONNX parity and predict's photo round trip.

    .venv/bin/python bench/trust_checks.py runs/X [--images 1000]

ONNX: the run exported with ``cnnlab export``'s code, run by onnxruntime on all 10,000 test
images, against torch's logits in this process.
Round trip: each test image is upscaled to 224 px, inverted (a dark item on off-white paper),
pasted off-centre on a 480x360 canvas and saved as JPEG, as a phone photo of a printout might
look; ``cnnlab predict``'s pipeline reads it back. Reported: how often the model's prediction
on the round-tripped image equals its prediction on the original, and the pixel correlation.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.data.idx_datasets import FASHION_MNIST
from cnnlab.data.images import prepare, read_image
from cnnlab.report.metrics import top_classes
from cnnlab.runs.export import export_onnx
from cnnlab.runs.loader import load_run


def top(run, images: np.ndarray) -> list:
    """The most probable class of each (N, 28, 28) image, with the run's test-time augmentation."""
    return top_classes(run.probabilities(images[:, None]), run.class_names, 1)


def onnx_parity(run, x: np.ndarray) -> tuple[float, float]:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(run, Path(tmp) / "model.onnx")
        got = ort.InferenceSession(str(Path(tmp) / "model.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"image": x}
        )[0]
    with torch.inference_mode():
        expected = run.model(torch.from_numpy(x)).numpy()
    return float(np.abs(got - expected).max()), float((got.argmax(1) == expected.argmax(1)).mean())


def photographed(image: np.ndarray, shift: int) -> np.ndarray:
    photo = Image.new("RGB", (480, 360), (250, 248, 240))
    photo.paste(
        Image.fromarray(255 - image).resize((224, 224), Image.Resampling.BICUBIC).convert("RGB"),
        (40 + shift, 60),
    )
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    buffer.seek(0)
    return prepare(read_image(buffer), FASHION_MNIST.dataset).image[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument(
        "--images", type=int, default=1000, help="test images for the round trip (default: 1000)"
    )
    args = parser.parse_args()
    run = load_run(args.run_dir)
    raw, _ = run.images("test")
    worst, agree = onnx_parity(run, run.dataset.normalize(raw))
    print(
        f"onnx vs torch on {len(raw)} test images: max |logit difference| {worst:.2g}, "
        f"argmax agreement {agree:.1%}"
    )
    originals = raw[: args.images, 0]  # (N, 28, 28): Fashion-MNIST's gray images
    seen = np.stack([photographed(img, i % 200) for i, img in enumerate(originals)])
    same = np.mean([a[0]["class"] == b[0]["class"] for a, b in zip(top(run, originals), top(run, seen))])
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(originals, seen)]
    print(
        f"photo round trip on {len(originals)} test images: same prediction {same:.1%}, "
        f"pixel correlation median {np.median(corr):.3f}"
    )


if __name__ == "__main__":
    main()
