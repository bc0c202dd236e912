"""``cnnlab explore``'s model side and JSON API, through Starlette's test client.

Tolerances: a served activation is an 8-bit code with a float32 offset and scale per map, so it
may differ from the float32 value by half a quantisation step, ``scale / 2`` with
``scale = (max - min) / 255`` of its map, plus float32 rounding (1e-6 of the map's range). A
convolution's written sum of products (float64 from float32 inputs) agrees with the map's float32
value to 1e-5 of the largest |product|-sum involved.
"""

import base64
import io
import json
import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.exceptions import StarletteDeprecationWarning

from cnnlab.cli import main
from cnnlab.data import CLASS_NAMES, FASHION_MNIST
from cnnlab.data.images import read_image
from cnnlab.inspect.convolve import format_number
from cnnlab.inspect.describe import DescribeError, Residual, describe
from cnnlab.inspect.explorer import closeup, inputs, network, served, server
from cnnlab.inspect.summary import summarize
from cnnlab.models import MODELS, build_model
from tests.datasets import to_fashion_mnist


def normalize(images):
    """uint8 (N, 28, 28) Fashion-MNIST images as the model takes them, (N, 1, 28, 28)."""
    return FASHION_MNIST.dataset.normalize(images[:, None])


FASHION = FASHION_MNIST.dataset

with warnings.catch_warnings():  # Starlette 1.x would rather its test client ran on httpx2; httpx works
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def page_client(app, base: str = "http://testserver") -> TestClient:
    """A client that sends what the explorer's own page sends: its origin on every request."""
    return TestClient(app, base_url=base, headers={"Origin": base})


@pytest.fixture(scope="module")
def runs(trained_run):
    return served.load_runs([trained_run])


@pytest.fixture(scope="module")
def client(runs):
    with page_client(server.create_app(runs)) as c:
        yield c


@pytest.fixture(scope="module")
def test_set(runs):
    return runs[0].tests


def b64(image: np.ndarray) -> str:
    return inputs.encode_image(image)


def direct_outputs(model, image: np.ndarray) -> list[np.ndarray]:
    """Every child's output of a Sequential, module by module: no hooks, an independent oracle. A
    residual block (body, shortcut, relu) gives its body's layers, the sum, then its ReLU."""
    x = torch.from_numpy(normalize(image[None]))  # (1, 1, 28, 28)
    outs = []

    def keep(value):
        outs.append(value[0].clone().numpy())
        return value

    with torch.inference_mode():
        for module in model:
            if hasattr(module, "body"):
                main = x
                for layer in module.body:
                    main = keep(layer(main))
                x = keep(main + module.shortcut(x))
                x = keep(module.relu(x))
            else:
                x = keep(module(x))
    return outs


def assert_close_to_quantised(encoded: dict, exact: np.ndarray) -> None:
    got = network.dequantize(encoded, exact.shape)
    maps = exact.reshape(len(exact), -1) if exact.ndim > 1 else exact.reshape(1, -1)
    spread = maps.max(1) - maps.min(1)  # (C,)
    allowed = (spread / 255 / 2 + 1e-6 * np.maximum(spread, 1))[:, None]
    error = np.abs(got.reshape(maps.shape) - maps)
    assert (error <= allowed).all(), float((error - allowed).max())


# ---- the model side -------------------------------------------------------


def test_quantize_is_within_half_a_step_per_map():
    rng = np.random.default_rng(0)
    values = np.stack([rng.normal(0, 3, (5, 7)), np.full((5, 7), 2.5), rng.uniform(0, 1e-3, (5, 7))])
    values = values.astype(np.float32)  # (3, 5, 7): wide, constant, tiny
    encoded = network.quantize(values)
    assert_close_to_quantised(encoded, values)
    assert encoded["min"] == values.min() and encoded["max"] == values.max()
    assert np.array_equal(network.dequantize(encoded, values.shape)[1], values[1])  # constant: exact


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registry_model_every_step_equals_a_direct_forward(name):
    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), 10).eval()
    net = network.Network(model, FASHION)
    rows = summarize(model).rows[1:]
    assert [(s.name, s.kind, s.detail, s.shape) for s in net.steps] == [
        (r.name, r.kind, r.detail, r.shape) for r in rows
    ]
    image = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    forward = net.run(image)
    for step, exact, got in zip(net.steps, direct_outputs(model, image), forward.outputs):
        np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-6, err_msg=f"{name} step {step.name}")
        assert_close_to_quantised(network.quantize(got), exact)
    np.testing.assert_allclose(forward.logits, direct_outputs(model, image)[-1], rtol=1e-6, atol=1e-6)


class Block(torch.nn.Module):
    """conv-bn-relu-conv-bn plus a 1x1 conv shortcut, then ReLU: a residual block as describe() wants it."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            torch.nn.BatchNorm2d(c_out),
            torch.nn.ReLU(inplace=True),
            torch.nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            torch.nn.BatchNorm2d(c_out),
        )
        self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(c_in, c_out, 1, stride)) if stride > 1 else None
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + (self.shortcut(x) if self.shortcut is not None else x))

    def summary_layers(self, prefix):
        shortcut = describe(self.shortcut, prefix + "shortcut.") if self.shortcut is not None else []
        return [
            Residual(prefix + "add", main=describe(self.body, prefix + "body."), shortcut=shortcut),
            *describe(self.relu, prefix + "relu"),
        ]


def tiny_resnet():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        Block(4, 4, 1),
        Block(4, 8, 2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()


def test_residual_blocks_get_an_add_step_equal_to_main_plus_shortcut():
    model = tiny_resnet()
    net = network.Network(model, FASHION)
    kinds = [s.kind for s in net.steps]
    assert kinds.count("Add") == 2 and kinds[-3:] == ["AdaptiveAvgPool2d", "Flatten", "Linear"]
    image = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    forward = net.run(image)
    x = torch.from_numpy(normalize(image[None]))
    with torch.inference_mode():
        stem = model[0](x)
        first = model[1].body(stem) + stem
        second = model[2].body(model[1](stem)) + model[2].shortcut(model[1](stem))
        logits = model(x)[0].numpy()
    adds = [i for i, s in enumerate(net.steps) if s.kind == "Add"]
    np.testing.assert_allclose(forward.outputs[adds[0]], first[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(forward.outputs[adds[1]], second[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(forward.logits, logits, rtol=1e-6, atol=1e-6)
    # the identity shortcut feeds the Add from the block's input; the strided one from its 1x1 conv
    assert net.steps[adds[0]].sources[1] == 0
    assert net.steps[net.steps[adds[1]].sources[1]].name == "2.shortcut.0"
    # a cell after the strided block sees a window of the input grown by both paths
    top, left, bottom, right = closeup.receptive_field(net, adds[1], (3, 3))
    assert (top, left, bottom, right) == (0, 0, 12, 12)  # main: 3 convs of 3x3, strided once


def test_a_model_whose_forward_its_description_misses_is_refused():
    class Sneaky(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))

        def forward(self, x):
            return self.layers(x) * 2  # not in summary_layers

        def summary_layers(self, prefix):
            return describe(self.layers, prefix + "layers.")

    with pytest.raises(DescribeError, match="do not give its output"):
        network.Network(Sneaky(), FASHION)


# ---- the API ----------------------------------------------------------------


def test_runs_are_listed_by_index_and_name_never_by_path(client, trained_run):
    answer = client.get("/api/runs")
    assert answer.status_code == 200
    (run,) = answer.json()["runs"]
    assert run["id"] == 0 and run["name"] == trained_run.name and run["model"] == "convnet"
    assert run["backend"] == "torch" and 0 <= run["test_accuracy"] <= 1 and run["test_images"] == 200
    assert str(trained_run.parent) not in answer.text


def test_layers_are_the_summary_rows(client, runs):
    answer = client.get("/api/runs/0/layers").json()
    rows = summarize(runs[0].network.model).rows[1:]
    assert [(x["name"], x["kind"], x["detail"], tuple(x["shape"])) for x in answer["layers"]] == [
        (r.name, r.kind, r.detail, r.shape) for r in rows
    ]
    assert answer["classes"] == list(CLASS_NAMES) and answer["input_shape"] == [1, 28, 28]
    assert [x["closeup"] for x in answer["layers"][:3]] == ["conv", "activation", "pool"]


def test_served_activations_equal_a_direct_forward_of_the_loaded_model(client, test_set, trained_run):
    from cnnlab.runs.loader import load_run

    model = load_run(trained_run).model  # loaded again, apart from the server's copy
    image = test_set.images[7]
    answer = client.post("/api/runs/0/forward", json={"image": b64(image)})
    assert answer.status_code == 200
    body = answer.json()
    exact = direct_outputs(model, image)
    assert len(body["layers"]) == len(exact)
    for encoded, values in zip(body["layers"], exact):
        assert_close_to_quantised(encoded, values)
    np.testing.assert_allclose(body["logits"], exact[-1], rtol=1e-6, atol=1e-6)
    probs = torch.from_numpy(exact[-1]).softmax(0).numpy()
    np.testing.assert_allclose(body["probabilities"], probs, rtol=1e-5, atol=1e-7)
    assert body["predicted"] == int(probs.argmax()) and body["class"] == CLASS_NAMES[body["predicted"]]
    light = client.post("/api/runs/0/forward", json={"image": b64(image), "activations": False}).json()
    assert "layers" not in light and light["logits"] == body["logits"]


def test_conv_detail_writes_the_sum_that_gives_the_map_value(client, test_set, runs):
    image = b64(test_set.images[3])
    forward = client.post("/api/runs/0/forward", json={"image": image}).json()
    # layer 3 is the second convolution: 32 input channels, 3x3
    detail = client.post(
        "/api/runs/0/conv", json={"image": image, "layer": 3, "channel": 5, "cell": [4, 6]}
    ).json()
    conv = runs[0].network.model[3]
    assert detail["in_channels"] == list(range(32)) and np.shape(detail["kernel"]) == (32, 3, 3)
    np.testing.assert_array_equal(np.float32(detail["kernel"]), conv.weight[5].detach().numpy())
    cell = detail["cell"]
    assert cell["value"] == detail["output"][4][6]
    assert math.isclose(cell["sum"], cell["value"], rel_tol=1e-5, abs_tol=1e-6)
    assert cell["text"].endswith(f"= {format_number(cell['value'])}") and cell["text"].startswith(
        "y[5, 4, 6] = "
    )
    assert len(cell["channels"]) == 32 and all(len(c["products"]) == 9 for c in cell["channels"])
    partials = [c["partial"] for c in cell["channels"]]
    assert math.isclose(math.fsum(partials) + detail["bias"], cell["sum"], rel_tol=1e-12, abs_tol=1e-12)
    for c, channel in enumerate(cell["channels"]):
        assert math.isclose(
            math.fsum(x * w for x, w in channel["products"]), channel["partial"], abs_tol=1e-12
        )
        assert channel["text"].endswith(f"= {format_number(channel['partial'])}")
        window = np.float32([x for x, _ in channel["products"]]).reshape(3, 3)
        pooled = network.dequantize(forward["layers"][2], (32, 13, 13))[c]  # the page's map c of layer 2
        step = (pooled.max() - pooled.min()) / 255
        assert np.abs(window - pooled[4:7, 6:9]).max() <= step / 2 + 1e-6  # the window is its 3x3 at (4, 6)
    assert cell["window"] == [4, 6, 6, 8]
    assert cell["field"] == [8, 12, 15, 19]  # 8x8 pixels, the receptive field `cnnlab summary` gives layer 3
    # the heatmap the page drew holds the same value, to 8-bit rounding
    heat = network.dequantize(forward["layers"][3], (64, 11, 11))[5, 4, 6]
    maps = np.array(detail["output"])
    assert abs(heat - cell["value"]) <= (maps.max() - maps.min()) / 255 / 2 + 1e-5


def test_first_layer_conv_detail_writes_nine_products_like_convolve_explain(client, test_set):
    image = b64(test_set.images[3])
    detail = client.post(
        "/api/runs/0/conv", json={"image": image, "layer": 0, "channel": 2, "cell": [0, 0]}
    ).json()
    cell = detail["cell"]
    terms = cell["text"].split(" = ")[1].split(" + ")
    assert len(terms) == 10 and terms[-1].endswith(" bias")  # 9 products and the bias
    assert cell["field"] == [0, 0, 2, 2] and cell["window"] == [0, 0, 2, 2]
    assert (
        detail["cell"] is not None
        and client.post("/api/runs/0/conv", json={"image": image, "layer": 0, "channel": 2}).json()["cell"]
        is None
    )


def test_pool_detail_marks_each_windows_maximum(client, test_set):
    image = b64(test_set.images[5])
    detail = client.post("/api/runs/0/pool", json={"image": image, "layer": 2, "channel": 1}).json()
    plane, out = np.array(detail["input"]), np.array(detail["output"])
    assert plane.shape == (26, 26) and out.shape == (13, 13) and len(detail["windows"]) == 169
    for k, ((top, left, bottom, right), (r, c)) in enumerate(zip(detail["windows"], detail["winners"])):
        window = plane[top : bottom + 1, left : right + 1]
        assert (bottom - top, right - left) == (1, 1) and top <= r <= bottom and left <= c <= right
        assert plane[r, c] == window.max() == out[k // 13, k % 13]
        assert detail["texts"][k].startswith("max(") and detail["texts"][k].endswith(
            f"= {format_number(out[k // 13, k % 13])}"
        )


def test_average_pool_writes_the_mean():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(338, 10)
    )
    net = network.Network(model.eval(), FASHION)
    forward = net.run(np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8))
    detail = closeup.pool_detail(net, forward, 1, 0)
    assert (
        detail["winners"] is None and detail["texts"][0].count(" + ") == 3 and " / 4 = " in detail["texts"][0]
    )


def test_test_images_by_index_class_and_mistake(client, test_set):
    first = client.get("/api/runs/0/test?index=7").json()
    assert first["index"] == 7 and first["label"] == int(test_set.labels[7])
    assert first["class"] == CLASS_NAMES[first["label"]]
    assert np.array_equal(inputs.decode_image(first["image"], (1, 28, 28)), test_set.images[7])
    shoe = client.get("/api/runs/0/test?class=7&after=-1").json()
    again = client.get(f"/api/runs/0/test?class=7&after={shoe['index']}").json()
    assert shoe["label"] == again["label"] == 7 and again["index"] > shoe["index"]
    wrong = client.get("/api/runs/0/test?mistake=1")
    if wrong.status_code == 200:  # the synthetic run may get every image right
        body = wrong.json()
        assert body["predicted"] != body["label"] == int(test_set.labels[body["index"]])
        assert client.get("/api/runs/0/test?mistake=1").json()["index"] == body["index"]  # seeded
    else:
        assert wrong.status_code == 400 and "every test image" in wrong.json()["error"]


def photo(light_on_dark: bool, kind: str = "PNG") -> bytes:
    canvas = (
        np.full((120, 90, 3), (245, 240, 225), np.uint8)
        if not light_on_dark
        else np.zeros((120, 90, 3), np.uint8)
    )
    canvas[20:100, 30:60] = (40, 30, 90) if not light_on_dark else (230, 220, 210)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_upload_is_prepared_exactly_as_predict_prepares_it(client, tmp_path, kind):
    data = photo(light_on_dark=False, kind=kind)
    (tmp_path / "item").write_bytes(data)
    expected = to_fashion_mnist(read_image(tmp_path / "item"))
    answer = client.post("/api/image", content=data, headers={"Content-Type": f"image/{kind.lower()}"}).json()
    assert answer["inverted"] is True is expected.inverted
    assert np.array_equal(inputs.decode_image(answer["image"], (1, 28, 28)), expected.image)
    kept = client.post(
        "/api/image?invert=no", content=photo(light_on_dark=True), headers={"Content-Type": "image/png"}
    ).json()
    assert kept["inverted"] is False


def bomb(side: int) -> bytes:
    """A side x side black PNG: 20000 is about 20 KB on the wire and 400 megapixels decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = zlib.compress((b"\0" * (side + 1)) * side, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


GOOD = base64.b64encode(bytes(784)).decode()
BAD_REQUESTS = {
    "upload over 5 MB": (
        "post",
        "/api/image",
        {"content": b"\x89PNG" + bytes(5 * 1024 * 1024)},
        413,
        "larger than 5 MB",
    ),
    "upload not an image": ("post", "/api/image", {"content": b"hello, world"}, 400, "not an image"),
    "upload empty": ("post", "/api/image", {"content": b""}, 400, "empty"),
    "upload a GIF": ("post", "/api/image", {"content": b"GIF89a" + bytes(20)}, 400, ""),
    "decompression bomb, 36 megapixels": ("post", "/api/image", {"content": 6000}, 400, "megapixels"),
    "decompression bomb, 400 megapixels": (
        "post",
        "/api/image",
        {"content": 20000},
        400,
        "decompression bomb",
    ),
    "truncated PNG": ("post", "/api/image", {"content": "TRUNCATED"}, 400, "damaged"),
    "bad invert": ("post", "/api/image?invert=maybe", {"content": b"x"}, 400, "invert must be"),
    "malformed JSON": ("post", "/api/runs/0/forward", {"content": b'{"image": '}, 400, "not valid JSON"),
    "JSON not an object": ("post", "/api/runs/0/forward", {"json": [1, 2]}, 400, "JSON object"),
    "JSON too large": ("post", "/api/runs/0/forward", {"json": {"image": "A" * 70000}}, 413, "larger than"),
    "no image": ("post", "/api/runs/0/forward", {"json": {}}, 400, "base64 string"),
    "image not base64": ("post", "/api/runs/0/forward", {"json": {"image": "%%%"}}, 400, "not valid base64"),
    "image wrong size": ("post", "/api/runs/0/forward", {"json": {"image": "AAAA"}}, 400, "784 bytes"),
    "layer out of range": (
        "post",
        "/api/runs/0/conv",
        {"json": {"image": GOOD, "layer": 99, "channel": 0}},
        400,
        "layer must be in 0..9",
    ),
    "layer not an int": (
        "post",
        "/api/runs/0/conv",
        {"json": {"image": GOOD, "layer": "0", "channel": 0}},
        400,
        "layer must be an integer",
    ),
    "channel out of range": (
        "post",
        "/api/runs/0/conv",
        {"json": {"image": GOOD, "layer": 0, "channel": 32}},
        400,
        "channel must be in 0..31",
    ),
    "cell out of range": (
        "post",
        "/api/runs/0/conv",
        {"json": {"image": GOOD, "layer": 0, "channel": 0, "cell": [26, 0]}},
        400,
        "row must be in 0..25",
    ),
    "cell malformed": (
        "post",
        "/api/runs/0/conv",
        {"json": {"image": GOOD, "layer": 0, "channel": 0, "cell": 3}},
        400,
        "cell must be",
    ),
    "conv on a ReLU": (
        "post",
        "/api/runs/0/conv",
        {"json": {"image": GOOD, "layer": 1, "channel": 0}},
        400,
        "not a convolution",
    ),
    "pool on a conv": (
        "post",
        "/api/runs/0/pool",
        {"json": {"image": GOOD, "layer": 0, "channel": 0}},
        400,
        "not a pool",
    ),
    "test index out of range": ("get", "/api/runs/0/test?index=200", {}, 400, "index must be in 0..199"),
    "test index negative": ("get", "/api/runs/0/test?index=-1", {}, 400, "index must be in 0..199"),
    "test index not a number": ("get", "/api/runs/0/test?index=x", {}, 400, "integer"),
    "test class out of range": ("get", "/api/runs/0/test?class=10", {}, 400, "class must be in 0..9"),
    "test no selector": ("get", "/api/runs/0/test", {}, 400, "exactly one"),
    "unknown run": ("get", "/api/runs/1/layers", {}, 404, "no run 1"),
    "negative run": ("get", "/api/runs/-1/layers", {}, 404, "not found"),
    "wrong method": ("get", "/api/runs/0/forward", {}, 405, ""),
    "unknown route": ("get", "/api/nothing", {}, 404, "not found"),
}
TRAVERSALS = [
    "/static/..%2F..%2F..%2Fpyproject.toml",
    "/static/%2e%2e%2fserver.py",
    "/static/%2Fetc%2Fpasswd",
    "/static/network.py",
    "/%2e%2e/%2e%2e/README.md",
    "/api/runs/0%2F..%2F..%2Fetc%2Fpasswd/layers",
    "/api/runs/..%2F0/layers",
    "/api/runs/%2Ftmp/layers",
    "/etc/passwd",
    "/static//etc/passwd",
]


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_and_one_line_of_json(client, name):
    method, url, kwargs, status, needle = BAD_REQUESTS[name]
    if isinstance(kwargs.get("content"), int):
        kwargs = {"content": bomb(kwargs["content"])}
        assert len(kwargs["content"]) < 5 * 1024 * 1024
    elif kwargs.get("content") == "TRUNCATED":
        noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, format="PNG")
        kwargs = {"content": buffer.getvalue()[: len(buffer.getvalue()) // 2]}
    if "content" in kwargs:  # sent as the page sends it: a file as image/png, JSON as application/json
        kind = "image/png" if url.startswith("/api/image") else "application/json"
        kwargs = {**kwargs, "headers": {"Content-Type": kind}}
    answer = getattr(client, method)(url, **kwargs)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert needle in error and "\n" not in error
    assert client.get("/api/runs").status_code == 200  # and the server goes on serving


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_get_404(client, path):
    answer = client.get(path)
    assert answer.status_code == 404 and "error" in answer.json()


def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/static/explore.js" in page.text and "http" not in page.text.replace("http-equiv", "")
    for name, kind in [("explore.js", "text/javascript"), ("explore.css", "text/css")]:
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
        assert "http://" not in answer.text and "https://" not in answer.text  # nothing from the network


def test_a_loopback_server_refuses_other_host_names(runs):
    app = server.create_app(runs, allowed_hosts={"127.0.0.1", "localhost"})
    with page_client(app, base="http://evil.example") as evil:
        assert evil.get("/api/runs").status_code == 400
    with page_client(app, base="http://127.0.0.1:8765") as local:
        assert local.get("/api/runs").status_code == 200


def test_without_test_images_the_rest_still_works(trained_run, tmp_path, isolated_cache):
    """The recorded data directory is gone and the search finds nothing (isolated_cache)."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    config["data_dir"] = str(tmp_path / "gone")
    (run / "config.json").write_text(json.dumps(config))
    (one,) = served.load_runs([run])
    assert one.tests is None and "not found" in one.tests_note
    with page_client(server.create_app([one])) as c:
        answer = c.get("/api/runs/0/test?index=0")
        assert answer.status_code == 404 and "no test images" in answer.json()["error"]
        assert c.post("/api/runs/0/forward", json={"image": GOOD}).status_code == 200


@pytest.fixture(scope="module")
def numpy_run(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("numpy") / "run"
    argv = ["train", "--backend", "numpy", "--data-dir", str(synthetic_dir), "--out", str(out)]
    argv += ["--train-size", "200", "--valid-size", "50", "--batch-size", "50", "--epochs", "1", "--quiet"]
    assert main(argv) == 0
    return out


def test_numpy_backend_runs_and_several_runs_side_by_side(numpy_run, trained_run, test_set):
    both = served.load_runs([trained_run, numpy_run])
    assert [r.backend for r in both] == ["torch", "numpy"]
    image = b64(test_set.images[0])
    with page_client(server.create_app(both)) as c:
        assert [r["backend"] for r in c.get("/api/runs").json()["runs"]] == ["torch", "numpy"]
        answers = [c.post(f"/api/runs/{i}/forward", json={"image": image}).json() for i in (0, 1)]
    exact = direct_outputs(both[1].network.model, test_set.images[0])
    for encoded, values in zip(answers[1]["layers"], exact):
        assert_close_to_quantised(encoded, values)
    assert answers[0]["logits"] != answers[1]["logits"]


# ---- the command ------------------------------------------------------------


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnlab: error: "), err
    for needle in needles:
        assert needle in err[0], err[0]


def test_missing_run_directory_exits_2_before_serving(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "nope"), "--port", "0"]) == 2
    one_error_line(capsys, "nope")


def test_corrupt_run_directory_exits_2_before_serving(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["explore", str(trained_run), str(run), "--port", "0"]) == 2
    one_error_line(capsys, "checkpoint")


def test_port_in_use_exits_2_before_serving(trained_run, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["explore", str(trained_run), "--port", str(port)]) == 2
    one_error_line(capsys, f"port {port}", "in use")


@pytest.mark.parametrize(
    "argv, needle", [(["--port", "70000"], "--port must be"), (["--host", "no.such.host.invalid"], "--host")]
)
def test_bad_port_or_host_exits_2(trained_run, capsys, argv, needle):
    assert main(["explore", str(trained_run), *argv]) == 2
    one_error_line(capsys, needle)
