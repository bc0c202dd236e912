"""The explorer's teaching views, server side: every number the page writes comes from here.

Activations, batch norm, dense neurons and residual sums against torch computed by hand; the
animation's sums against the close-up's; ties; saliency through the API against ``Run.saliency``;
the top images against a direct pass over the test set, and their cache; a run followed while
its checkpoint changes; the shape widget against ``cnnlab.shapes``.
"""

import math
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from starlette.exceptions import StarletteDeprecationWarning

import cnnlab
from cnnlab import shapes
from cnnlab.data import FASHION_MNIST
from cnnlab.inspect.convolve import format_number
from cnnlab.inspect.explorer import closeup, compute, exciting, explain, inputs, network, served, server
from cnnlab.models import build_model
from tests.datasets import fashion_normalize

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

OWN = "http://testserver"


def page_client(app) -> TestClient:
    return TestClient(app, headers={"Origin": OWN})


@pytest.fixture(scope="module")
def runs(trained_run):
    return served.load_runs([trained_run])


@pytest.fixture(scope="module")
def client(runs):
    with page_client(server.create_app(runs)) as c:
        yield c


@pytest.fixture(scope="module")
def image(runs):
    return runs[0].tests.images[11]


def b64(image) -> str:
    return inputs.encode_image(image)


def model_net(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(name, (1, 28, 28), 10).eval()
    with torch.no_grad():  # running statistics away from (0, 1), so batch norm does something
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return model, network.Network(model, FASHION_MNIST.dataset)


def rng_image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)


# ---- the explanation views, against torch by hand -------------------------------


def test_a_relu_map_is_max_of_zero_and_what_it_received(client, image, runs):
    answer = client.post("/api/runs/0/explain", json={"image": b64(image), "layer": 1, "channel": 4}).json()
    assert answer["view"] == "activation" and answer["formula"] == "y = max(0, x)"
    model = runs[0].network.model
    with torch.inference_mode():
        before = model[0](torch.from_numpy(fashion_normalize(image[None])))[0, 4].numpy()
    np.testing.assert_allclose(np.array(answer["input"]).reshape(26, 26), before, atol=1e-6)
    np.testing.assert_array_equal(answer["output"], np.maximum(answer["input"], 0))
    assert answer["negative"] == int((before < 0).sum()) == answer["zeroed"]


def test_batch_norm_writes_its_formula_with_the_running_statistics():
    model, net = model_net("convnet-bn")
    forward = net.run(rng_image(1))
    detail = explain.batchnorm_detail(net, forward, 1, 3)  # convnet-bn: conv, BatchNorm2d, ...
    bn = model[1]
    x = np.array(detail["input"], np.float64)
    expected = (x - float(bn.running_mean[3])) / math.sqrt(float(bn.running_var[3]) + bn.eps)
    expected = expected * float(bn.weight[3].detach()) + float(bn.bias[3].detach())
    np.testing.assert_allclose(detail["output"], expected, atol=1e-5)
    assert detail["text"].endswith(f"= {format_number(detail['output'][0][0])}")
    np.testing.assert_allclose(np.array(detail["output"]), x * detail["scale"] + detail["shift"], atol=1e-5)


def test_a_dense_neuron_lists_its_largest_products_and_where_they_came_from(client, image, runs):
    layer = next(s.index for s in runs[0].network.steps if s.kind == "Linear")  # 7: 1600 -> 128
    answer = client.post(
        "/api/runs/0/explain", json={"image": b64(image), "layer": layer, "channel": 5}
    ).json()
    assert answer["view"] == "dense" and answer["inputs"] == 1600 and answer["origin"] == [64, 5, 5]
    linear = runs[0].network.model[layer]
    x = runs[0].network.run(image, inputs=False).outputs[layer - 1].astype(np.float64)  # the Flatten's output
    products = x * linear.weight[5].detach().double().numpy()
    assert math.isclose(
        answer["sum"], math.fsum(products) + float(linear.bias[5]), rel_tol=1e-9, abs_tol=1e-9
    )
    assert math.isclose(answer["sum"], answer["value"], rel_tol=1e-5, abs_tol=1e-5)
    sizes = [abs(t["product"]) for t in answer["top"]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == pytest.approx(np.abs(products).max())
    for t in answer["top"]:
        c, i, j = t["from"]
        assert t["index"] == c * 25 + i * 5 + j and t["product"] == pytest.approx(products[t["index"]])
    assert answer["text"].startswith("y[5] = (") and "the other 1590 products" in answer["text"]
    assert answer["text"].endswith(f"= {format_number(answer['value'])}")


def test_a_residual_sum_is_main_plus_shortcut():
    _, net = model_net("resnet-mini")
    forward = net.run(rng_image(2))
    add = next(s.index for s in net.steps if s.kind == "Add")
    detail = explain.add_detail(net, forward, add, 2)
    np.testing.assert_allclose(np.add(detail["main"], detail["shortcut"]), detail["output"], atol=1e-6)


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"layer": 0, "channel": 0}, "has no explanation view"),  # a conv has its own close-up
        ({"layer": 1, "channel": 32}, "channel must be in 0..31"),
        ({"layer": 7, "channel": 128}, "neuron must be in 0..127"),
        ({"layer": 10, "channel": 0}, "layer must be in 0..9"),
        ({"layer": "1", "channel": 0}, "layer must be an integer"),
    ],
)
def test_explain_refuses_bad_fields(client, image, body, needle):
    answer = client.post("/api/runs/0/explain", json={"image": b64(image), **body})
    assert answer.status_code == 400 and needle in answer.json()["error"]


# ---- the animation, ties ----------------------------------------------------------


@pytest.mark.parametrize("name, layer", [("convnet", 3), ("vgg-mini", 0)])
def test_every_animated_sum_is_the_close_ups_sum(name, layer):
    _, net = model_net(name)
    forward = net.run(rng_image(3))
    cells = closeup.conv_cells(net, forward, layer, 2)
    out_h, out_w = net.steps[layer].shape[1:]
    assert len(cells) == out_h * out_w
    for k in (0, 1, out_w, len(cells) // 2, len(cells) - 1):
        i, j = divmod(k, out_w)
        detail = closeup.conv_detail(net, forward, layer, 2, (i, j))["cell"]
        assert cells[k]["text"] == detail["text"] and cells[k]["window"] == detail["window"]
        assert math.isclose(cells[k]["sum"], cells[k]["value"], rel_tol=1e-5, abs_tol=1e-5)


def test_padding_is_marked_apart_from_zeros():
    _, net = model_net("vgg-mini")  # its first convolution pads by 1
    image = np.zeros((28, 28), np.uint8)  # all black: every input value is the same, -1
    forward = net.run(image)
    corner = closeup.conv_detail(net, forward, 0, 0, (0, 0))["cell"]
    assert corner["channels"][0]["padded"] == [True, True, True, True, False, False, True, False, False]
    assert [a for a, _ in corner["channels"][0]["products"]][:3] == [0.0, 0.0, 0.0]  # padding is zero
    middle = closeup.conv_detail(net, forward, 0, 0, (5, 5))["cell"]
    assert not any(middle["channels"][0]["padded"])


def test_ties_are_found_to_float32_rounding():
    assert compute.tied(np.float32([0.5, 2.0, 2.0, -1.0])) == [1, 2]
    assert compute.tied(np.float32([1.0] * 10)) == list(range(10))
    assert compute.tied(np.float32([1.0, 1.001])) == [1]
    assert compute.tied(np.float32([1000.0, 1000.0001])) == [0, 1]  # one float32 step apart


def test_a_blank_image_through_an_untrained_model_is_a_ten_way_tie(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    for state in (checkpoint["model"], checkpoint.get("ema") or {}):
        for key, value in state.items():
            if key.endswith("weight") or key.endswith("bias"):
                value.zero_()  # every logit is the last bias, 0
    torch.save(checkpoint, run / "checkpoint.pt")
    (one,) = served.load_runs([run])
    with page_client(server.create_app([one])) as c:
        answer = c.post("/api/runs/0/forward", json={"image": b64(np.zeros((28, 28), np.uint8))}).json()
    assert answer["tied"] == list(range(10)) and answer["probabilities"] == [0.1] * 10


# ---- saliency, top images ------------------------------------------------------------


def test_saliency_through_the_api_is_run_saliency(client, image, trained_run):
    run = cnnlab.load_run(trained_run)
    for method, layer, name in [
        ("gradcam", None, None),
        ("gradcam", 0, "0"),
        ("gradient", None, None),
        ("occlusion", None, None),
    ]:
        answer = client.post(
            "/api/runs/0/saliency", json={"image": b64(image), "method": method, "layer": layer, "target": 3}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        expected = run.saliency(image, method, layer=name, target=3)
        got = network.dequantize(body["map"], expected.shape)
        spread = float(expected.max() - expected.min())
        assert np.abs(got - expected).max() <= spread / 255 / 2 + 1e-6
        assert body["target"] == 3 and body["class"] == cnnlab.CLASS_NAMES[3]
        assert body["layer"] == ({None: 3, 0: 0}[layer] if method == "gradcam" else None)


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"method": "lime"}, "method must be one of"),
        ({"method": "gradcam", "layer": 1}, "the index of a convolution step"),
        ({"method": "gradient", "layer": 0}, "layer is for gradcam only"),
        ({"method": "gradcam", "target": 10}, "target must be a class index in 0..9"),
        ({"method": "gradcam", "target": "3"}, "target must be an integer"),
    ],
)
def test_saliency_refuses_bad_fields(client, image, body, needle):
    answer = client.post("/api/runs/0/saliency", json={"image": b64(image), **body})
    assert answer.status_code == 400 and needle in answer.json()["error"], answer.text


def test_top_images_are_the_test_images_with_the_largest_peaks_and_are_cached(
    trained_run, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / exciting.CACHE).unlink(missing_ok=True)
    (one,) = served.load_runs([run_dir])
    with page_client(server.create_app([one])) as c:
        answer = c.get("/api/runs/0/top?layer=3&channel=7").json()
        dense = c.get("/api/runs/0/top?layer=9&channel=2").json()
        assert c.get("/api/runs/0/top?layer=6&channel=0").status_code == 400  # Flatten: no channels
        assert c.get("/api/runs/0/top?layer=3&channel=64").status_code == 400
    tests = one.tests
    with torch.inference_mode():
        x = torch.from_numpy(fashion_normalize(tests.images))
        peaks = one.network.model[:4](x)[:, 7].amax((1, 2)).numpy()  # conv 3's map 7, before its ReLU
        logits = one.network.model(x)[:, 2].numpy()
    assert [i["index"] for i in answer["images"]] == list(np.argsort(-peaks, kind="stable")[: exciting.KEEP])
    np.testing.assert_allclose([i["value"] for i in answer["images"]], np.sort(peaks)[::-1][:9], rtol=1e-5)
    assert [i["index"] for i in dense["images"]] == list(np.argsort(-logits, kind="stable")[:9])
    first = answer["images"][0]
    assert np.array_equal(inputs.decode_image(first["image"], (1, 28, 28)), tests.images[first["index"]])
    assert first["class"] == cnnlab.CLASS_NAMES[int(tests.labels[first["index"]])]
    assert (run_dir / exciting.CACHE).is_file()

    # a new server reads the cache instead of computing; a new checkpoint computes afresh
    monkeypatch.setattr(exciting, "_responses", lambda *a: pytest.fail("computed again"))
    (again,) = served.load_runs([run_dir])
    assert compute.top_images(again, {"layer": 3, "channel": 7})["images"] == [
        {k: v for k, v in i.items()} for i in answer["images"]
    ]
    stat = (run_dir / "checkpoint.pt").stat()
    os.utime(run_dir / "checkpoint.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(pytest.fail.Exception, match="computed again"):
        compute.top_images(again, {"layer": 3, "channel": 7})


def test_a_run_directory_that_cannot_be_written_keeps_the_top_images_in_memory(
    trained_run, tmp_path, monkeypatch
):
    from cnnlab import fileio
    from cnnlab.errors import RunDirError

    def refuse(path, write):
        raise RunDirError(
            f"cannot write in {path.parent}: Read-only file system; choose a directory you can write to"
        )

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / exciting.CACHE).unlink(missing_ok=True)
    monkeypatch.setattr(fileio, "write_atomic", refuse)  # as a read-only directory does, even for root
    (one,) = served.load_runs([run_dir])
    assert len(compute.top_images(one, {"layer": 0, "channel": 0})["images"]) == 9
    assert not (run_dir / exciting.CACHE).exists()


# ---- a run followed while it trains ---------------------------------------------------


def test_a_new_checkpoint_is_loaded_and_bumps_the_version(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "summary.json").unlink()  # as if still training
    (one,) = served.load_runs([run_dir])
    assert not one.finished and one.version == 0 and len(one.history) == 2
    assert not served.refresh(one)  # nothing new
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    checkpoint["model"]["0.weight"] = checkpoint["model"]["0.weight"] * 2
    if checkpoint.get("ema"):
        checkpoint["ema"]["module.0.weight"] = checkpoint["ema"]["module.0.weight"] * 2
    checkpoint["history"] = checkpoint["history"] + [dict(checkpoint["history"][-1], epoch=3)]
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    before = compute.filters(one)["weights"]
    with page_client(server.create_app([one])) as c:
        progress = c.get("/api/runs/0/progress").json()
        assert progress["version"] == 1 and progress["epochs_done"] == 3 and not progress["finished"]
        assert [row["epoch"] for row in progress["history"]] == [1, 2, 3]
        after = c.get("/api/runs/0/filters").json()
        assert after["version"] == 1
        np.testing.assert_allclose(after["weights"], np.array(before) * 2, rtol=1e-6)
        image = b64(rng_image(4))
        assert (
            c.post("/api/runs/0/forward", json={"image": image, "activations": False}).json()["version"] == 1
        )
    shutil.copy(trained_run / "summary.json", run_dir / "summary.json")
    assert served.refresh(one) and one.finished and one.version == 2
    assert not served.refresh(one)


def test_a_damaged_checkpoint_mid_training_keeps_the_last_good_one(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "summary.json").unlink()
    (one,) = served.load_runs([run_dir])
    (run_dir / "checkpoint.pt").write_bytes(b"half a file")
    assert not served.refresh(one) and one.version == 0
    assert compute.forward(one, {"image": b64(rng_image(5)), "activations": False})


# ---- the shape widget, the page's facts --------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, padding, stride, dilation", [(28, 3, 0, 1, 1), (28, 4, 1, 2, 1), (9, 3, 1, 1, 3)]
)
def test_the_shape_widget_uses_the_one_formula(client, size, kernel, padding, stride, dilation):
    query = f"size={size}&kernel={kernel}&padding={padding}&stride={stride}&dilation={dilation}"
    answer = client.get(f"/api/shape?{query}").json()
    expected = shapes.conv2d_output_shape((size, size), kernel, stride, padding, dilation)[0]
    assert answer["out"] == expected and answer["formula"].endswith(f" = {expected}")
    assert answer["formula"].startswith(
        f"floor(({size} + 2*{padding} - {dilation}*({kernel} - 1) - 1) / {stride})"
    )


@pytest.mark.parametrize(
    "query, needle",
    [
        ("size=3&kernel=5", "larger than the padded input"),
        ("size=28&kernel=0", "kernel_size must be positive"),
        ("size=x", "size must be an integer"),
        ("size=28&kernel=3&padding=-1", "padding must be non-negative"),
    ],
)
def test_the_shape_widget_reports_what_cannot_work(client, query, needle):
    answer = client.get(f"/api/shape?{query}")
    assert answer.status_code == 400 and needle in answer.json()["error"]


def test_the_layers_say_how_the_input_is_normalised(client):
    answer = client.get("/api/runs/0/layers").json()
    assert answer["normalisation"] == {"pixel_max": 255.0, "mean": [0.5], "std": [0.5]}
    kinds = [(x["kind"], x["closeup"]) for x in answer["layers"]]
    assert kinds == [
        ("Conv2d", "conv"),
        ("ReLU", "activation"),
        ("MaxPool2d", "pool"),
        ("Conv2d", "conv"),
        ("ReLU", "activation"),
        ("MaxPool2d", "pool"),
        ("Flatten", "flatten"),
        ("Linear", "dense"),
        ("ReLU", "activation"),
        ("Linear", "dense"),
    ]
