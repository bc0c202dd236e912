"""What the API computes for a run: plain functions from a served run and a request's fields to a
JSON-ready dict (or JSON bytes), so the HTTP layer (``server``) only parses and answers.

A ValueError means a bad field (its message names it and echoes the value); the server turns it
into a 400.
"""

from __future__ import annotations

import json

import numpy as np

from cnnlab.inspect.explorer import closeup, explain, inputs, network
from cnnlab.inspect.explorer.served import Served

__all__ = [
    "pick_test_image",
    "forward",
    "conv",
    "pool",
    "saliency",
    "explained",
    "top_images",
    "filters",
    "tied",
]

TIE = 1e-6  # logits this close (relative to the largest) are one value as float32 rounding leaves them


def _field(body: dict, key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer. Received: {key}={value!r}")
    return value


def _image(run: Served, body: dict) -> np.ndarray:
    """The request's image, of the run's input shape: (H, W) gray or (C, H, W) colour."""
    return inputs.decode_image(body.get("image"), run.dataset.input_shape)


def _tests(run: Served) -> inputs.TestImages:
    """The run's test images; the server asks only of a run that has them (``server._with_tests``)."""
    if run.tests is None:
        raise ValueError(f"no test images for this run: {run.tests_note}")
    return run.tests


def pick_test_image(run: Served, how: str, query: dict) -> dict:
    """A test image by ``index``, by ``class`` (the next after ``after``) or a seeded ``mistake``."""
    tests = _tests(run)
    extra = {}
    if how == "index":
        index = tests.check(query["index"])
    elif how == "class":
        label = query["class"]
        if not 0 <= label < len(run.classes):
            raise ValueError(f"class must be in 0..{len(run.classes) - 1}. Received: class={label}")
        index = tests.next_of_class(label, query.get("after", -1))
    else:
        found = network.find_mistake(run.network, tests.images, tests.labels, query["mistake"])
        if found is None:
            raise ValueError("this run classifies every test image correctly: no mistake to show")
        index, extra = found[0], {"predicted": found[1]}
    label = int(tests.labels[index])
    image = inputs.encode_image(tests.images[index])
    return {"index": index, "label": label, "class": run.classes[label], "image": image, **extra}


def tied(logits: np.ndarray) -> list[int]:
    """The classes whose logit equals the largest, to float32 rounding: more than one is a tie."""
    top = float(logits.max())
    return [int(k) for k in np.flatnonzero(logits >= top - TIE * max(1.0, abs(top)))]


def forward(run: Served, body: dict) -> bytes:
    """Logits, softmax, the tie if there is one and, unless ``activations`` is false, every step's
    output as 8-bit codes; as JSON bytes already, since the codes are most of them."""
    result = run.network.run(_image(run, body), inputs=False)
    probabilities = result.probabilities
    predicted = int(probabilities.argmax())
    answer = {
        "logits": result.logits.tolist(),
        "probabilities": probabilities.tolist(),
        "predicted": predicted,
        "class": run.classes[predicted],
        "tied": tied(result.logits),
        "version": run.version,
    }
    head = json.dumps(answer, allow_nan=False).encode()
    if not body.get("activations", True):
        return head
    return head[:-1] + b',"layers":' + network.quantized_json(result.outputs) + b"}"


def _cell(body: dict):
    cell = body.get("cell")
    if cell is None:
        return None
    if not (isinstance(cell, list) and len(cell) == 2):
        raise ValueError(f"cell must be [row, col] or null. Received: cell={cell!r}")
    return (_field({"row": cell[0]}, "row"), _field({"col": cell[1]}, "col"))


def conv(run: Served, body: dict) -> dict:
    net = run.network
    forward = net.run(_image(run, body))
    layer, channel = _field(body, "layer"), _field(body, "channel")
    detail = closeup.conv_detail(net, forward, layer, channel, _cell(body))
    if body.get("all_cells"):
        detail["cells"] = closeup.conv_cells(net, forward, layer, channel)
    return detail


def pool(run: Served, body: dict) -> dict:
    forward = run.network.run(_image(run, body))
    return closeup.pool_detail(run.network, forward, _field(body, "layer"), _field(body, "channel"))


EXPLAINED = {
    "activation": explain.activation_detail,
    "batchnorm": explain.batchnorm_detail,
    "dense": explain.dense_detail,
    "add": explain.add_detail,
}


def explained(run: Served, body: dict) -> dict:
    """An activation, batch norm, dense neuron or residual sum up close (``explain``)."""
    net = run.network
    layer = _field(body, "layer")
    if not 0 <= layer < len(net.steps):
        raise ValueError(f"layer must be in 0..{len(net.steps) - 1}. Received: {layer}")
    view = net.steps[layer].closeup
    if view not in EXPLAINED:
        raise ValueError(f"layer {layer} is a {net.steps[layer].kind}, which has no explanation view")
    forward = net.run(_image(run, body), inputs=False)
    return {"view": view, **EXPLAINED[view](net, forward, layer, _field(body, "channel"))}


def saliency(run: Served, body: dict) -> dict:
    """Where the model looks for the image: ``method``, Grad-CAM's ``layer`` (a convolution step,
    or null for the last), ``target`` (a class, or null for the predicted one)."""
    from cnnlab.errors import ConfigError
    from cnnlab.inspect.saliency import METHODS, explainer_for, occlusion_baseline

    net = run.network
    method, layer, target = body.get("method", "gradcam"), body.get("layer"), body.get("target")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}. Received: method={method!r}")
    name = None
    if layer is not None:
        index = _field(body, "layer")
        if not 0 <= index < len(net.steps) or net.steps[index].kind != "Conv2d":
            raise ValueError(f"layer must be the index of a convolution step. Received: layer={index}")
        name = net.steps[index].name
    if target is not None:
        target = _field(body, "target")
    image = _image(run, body)
    explainer = explainer_for(net.model)
    try:
        x = run.dataset.normalize(image.reshape(1, *run.dataset.input_shape))
        maps, targets = explainer.maps(x, method, name, target, occlusion_baseline(run.dataset))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    chosen = explainer.layer_name(name) if method == "gradcam" else None
    step = next((s.index for s in net.steps if s.name == chosen and s.kind == "Conv2d"), None)
    return {
        "method": method,
        "layer": step,
        "target": int(targets[0]),
        "class": run.classes[int(targets[0])],
        "map": network.quantize(maps),
        "version": run.version,
    }


def top_images(run: Served, query: dict) -> dict:
    """The test images that excite ``channel`` of ``layer`` most (computed once per checkpoint)."""
    tests = _tests(run)
    answer = run.top.of(run.network, tests.images, tests.labels, query["layer"], query["channel"])
    for item in answer["images"]:
        label = int(tests.labels[item["index"]])
        item |= {
            "label": label,
            "class": run.classes[label],
            "image": inputs.encode_image(tests.images[item["index"]]),
        }
    return answer


def filters(run: Served) -> dict:
    """The first convolution's kernels (C_out, C_in, kH, kW), as the run has them now."""
    net = run.network
    first = next((s for s in net.steps if s.kind == "Conv2d"), None)
    if first is None:
        raise ValueError("this model has no convolution")
    weight = net.module(first).weight.detach().float().numpy()
    return {
        "layer": first.index,
        "name": first.name,
        "shape": list(weight.shape),
        "weights": weight.tolist(),
        "version": run.version,
    }
