"""The runs being served, and what the API computes for each: plain functions from a run and a
request's fields to a JSON-ready dict, so the HTTP layer (``server``) only parses and answers.

A ValueError means a bad field (its message names it and echoes the value); the server turns it
into a 400.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cnnlab.inspect.explorer import closeup, inputs, network

__all__ = ["Served", "load_runs", "pick_test_image", "forward", "conv", "pool"]


@dataclasses.dataclass
class Served:
    """One run as the page sees it."""

    name: str  # the run directory's name, never its path
    model: str
    backend: str
    accuracy: float | None  # the test accuracy the run reported, if finished
    network: network.Network
    tests: inputs.TestImages | None
    tests_note: str  # where the test images came from, or why there are none
    classes: tuple[str, ...] = ()

    def as_json(self, index: int) -> dict:
        return {
            "id": index,
            "name": self.name,
            "model": self.model,
            "backend": self.backend,
            "test_accuracy": self.accuracy,
            "test_images": len(self.tests.labels) if self.tests is not None else 0,
            "test_note": self.tests_note,
            "classes": list(self.classes),
        }


def load_runs(paths, data_dir: str | None = None) -> list[Served]:
    """Every run through the one run loader (the weights each reported), checked before serving."""
    from cnnlab.errors import RunDirError
    from cnnlab.inspect.describe import DescribeError
    from cnnlab.runs.loader import load_run

    found: dict[str, tuple] = {}
    served = []
    for path in paths:
        loaded = load_run(path)
        try:
            net = network.Network(loaded.model, loaded.dataset)
        except DescribeError as exc:
            raise RunDirError(
                f"{loaded.path}: cannot explore model {loaded.config.model!r} ({exc})"
            ) from None
        where = (loaded.config.dataset, loaded.config.image_size, loaded.config.color, str(data_dir))
        if where not in found:  # runs on the same data share one copy of the test set
            found[where] = inputs.TestImages.find(loaded, data_dir)
        tests, note = found[where]
        accuracy = (loaded.summary or {}).get("test_accuracy")
        backend = getattr(loaded.config, "backend", "torch")
        served.append(
            Served(
                Path(loaded.path).name,
                loaded.config.model,
                backend,
                accuracy,
                net,
                tests,
                note,
                loaded.class_names,
            )
        )
    return served


def _field(body: dict, key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer. Received: {key}={value!r}")
    return value


def pick_test_image(run: Served, how: str, query: dict) -> dict:
    """A test image by ``index``, by ``class`` (the next after ``after``) or a seeded ``mistake``."""
    names = run.classes
    tests = run.tests
    extra = {}
    if how == "index":
        index = tests.check(query["index"])
    elif how == "class":
        label = query["class"]
        if not 0 <= label < len(names):
            raise ValueError(f"class must be in 0..{len(names) - 1}. Received: class={label}")
        index = tests.next_of_class(label, query.get("after", -1))
    else:
        found = network.find_mistake(run.network, tests.images, tests.labels, query["mistake"])
        if found is None:
            raise ValueError("this run classifies every test image correctly: no mistake to show")
        index, extra = found[0], {"predicted": found[1]}
    label = int(tests.labels[index])
    image = inputs.encode_image(tests.images[index])
    return {"index": index, "label": label, "class": names[label], "image": image, **extra}


def forward(run: Served, body: dict) -> bytes:
    """Logits, softmax and, unless ``activations`` is false, every step's output as 8-bit codes;
    as JSON bytes already, since the codes are most of them (``network.quantized_json``)."""
    result = run.network.run(inputs.decode_image(body.get("image")), inputs=False)
    probabilities = result.probabilities
    predicted = int(probabilities.argmax())
    answer = {
        "logits": result.logits.tolist(),
        "probabilities": probabilities.tolist(),
        "predicted": predicted,
        "class": run.classes[predicted],
    }
    head = json.dumps(answer, allow_nan=False).encode()
    if not body.get("activations", True):
        return head
    return head[:-1] + b',"layers":' + network.quantized_json(result.outputs) + b"}"


def conv(run: Served, body: dict) -> dict:
    forward = run.network.run(inputs.decode_image(body.get("image")))
    cell = body.get("cell")
    if cell is not None:
        if not (isinstance(cell, list) and len(cell) == 2):
            raise ValueError(f"cell must be [row, col] or null. Received: cell={cell!r}")
        cell = (_field({"row": cell[0]}, "row"), _field({"col": cell[1]}, "col"))
    return closeup.conv_detail(run.network, forward, _field(body, "layer"), _field(body, "channel"), cell)


def pool(run: Served, body: dict) -> dict:
    forward = run.network.run(inputs.decode_image(body.get("image")))
    return closeup.pool_detail(run.network, forward, _field(body, "layer"), _field(body, "channel"))
