"""``cnnlab explore`` on every dataset: a colour run (a folder of RGB PNGs, 3x16x16, three named
classes) and your own network on scikit-learn's 8x8 digits. The page is given the run's own input
shape, channels, class names and per-channel normalisation; images travel as C x H x W bytes;
uploads, saliency and the close-ups follow the run's data."""

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.inspect.explorer import inputs, served, server
from tests.test_explore import page_client

QUICK = ["--epochs", "3", "--batch-size", "16", "--precision", "32", "--quiet"]
CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def colour(colour_run):
    runs = served.load_runs([colour_run])
    with page_client(server.create_app(runs)) as client:
        yield runs[0], client


def b64(image: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(image, np.uint8).tobytes()).decode()


def test_the_page_is_told_the_runs_shape_channels_classes_and_normalisation(colour, colour_run):
    run, client = colour
    layers = client.get("/api/runs/0/layers").json()
    saved = json.loads((colour_run / "dataset.json").read_text())
    assert layers["input_shape"] == [3, 16, 16] and layers["channels"] == ["red", "green", "blue"]
    assert layers["classes"] == CLASSES == client.get("/api/runs").json()["runs"][0]["classes"]
    assert layers["normalisation"] == {"pixel_max": 255.0, "mean": saved["mean"], "std": saved["std"]}
    assert len(set(saved["mean"])) == 3  # really per channel: the bands differ in colour


def test_a_colour_test_image_travels_whole_and_is_classified_as_predict_does(colour, colour_run):
    run, client = colour
    picked = client.get("/api/runs/0/test?index=4").json()
    image = inputs.decode_image(picked["image"], (3, 16, 16))
    assert image.shape == (3, 16, 16) and np.array_equal(image, run.tests.images[4])
    assert picked["class"] == CLASSES[int(run.tests.labels[4])]
    forward = client.post("/api/runs/0/forward", json={"image": picked["image"]}).json()
    expected = cnnlab.load_run(colour_run).predict(image).probabilities[0]
    np.testing.assert_allclose(forward["probabilities"], expected, atol=1e-5)
    assert forward["class"] == CLASSES[int(np.argmax(expected))]
    # the first convolution sees three channels, and its sum says so channel by channel
    conv = client.post(
        "/api/runs/0/conv", json={"image": picked["image"], "layer": 0, "channel": 0, "cell": [3, 5]}
    ).json()
    assert conv["in_channels"] == [0, 1, 2] and len(conv["cell"]["channels"]) == 3


def test_an_image_of_the_wrong_size_is_refused_with_the_size_to_send(colour):
    _, client = colour
    gray = b64(np.zeros((16, 16), np.uint8))  # 256 bytes: a gray image, for a colour run
    answer = client.post("/api/runs/0/forward", json={"image": gray})
    assert answer.status_code == 400
    assert "image must hold 768 bytes (16x16 pixels x 3 channels). Received: 256 bytes" in answer.text


def test_an_upload_is_prepared_for_the_colour_run_as_predict_prepares_it(colour, colour_run, tmp_path):
    _, client = colour
    photo = np.zeros((40, 30, 3), np.uint8)
    photo[:, :, 1] = 200  # green
    photo[10:20, :, 0] = 250  # a red band across it
    Image.fromarray(photo).save(tmp_path / "photo.png")
    data = (tmp_path / "photo.png").read_bytes()
    answer = client.post("/api/image?run=0", content=data, headers={"Content-Type": "image/png"}).json()
    image = inputs.decode_image(answer["image"], (3, 16, 16))
    expected = cnnlab.load_run(colour_run).prepare(tmp_path / "photo.png")
    assert np.array_equal(image, np.asarray(expected)) and answer["inverted"] is False
    assert image[1].mean() > 150 and image[2].max() == 0  # colour kept: green, no blue
    refused = client.post("/api/image?run=5", content=data, headers={"Content-Type": "image/png"})
    assert refused.status_code == 404 and "no run 5" in refused.text


@pytest.mark.parametrize("method", ["gradcam", "gradient", "occlusion"])
def test_where_the_model_looks_on_a_colour_image(colour, colour_run, method):
    run, client = colour
    image = run.tests.images[0]
    answer = client.post("/api/runs/0/saliency", json={"image": b64(image), "method": method}).json()
    codes = base64.b64decode(answer["map"]["data"])
    assert len(codes) == 16 * 16 and answer["class"] in CLASSES  # one map at the input's size
    direct = cnnlab.load_run(colour_run).saliency(image, method)
    assert direct.shape == (1, 16, 16) and np.isfinite(direct).all()


def test_occlusion_covers_a_colour_image_with_its_mean_colour(colour):
    """The patch holds 0 in every channel after normalisation (the mean colour), not black."""
    from cnnlab.inspect.saliency import Explainer, occlusion_baseline

    run, _ = colour
    assert occlusion_baseline(run.dataset) == (0.0, 0.0, 0.0)
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.mean((2, 3))  # three "classes": one per channel

    x = torch.full((1, 3, 14, 14), 1.5).numpy()
    Explainer(Recorder()).maps(x, "occlusion", baseline=(-1.0, -2.0, -3.0))
    patched = seen[-1][0]  # the first patch: rows and columns 0..1
    assert patched[:, 0, 0].tolist() == [-1.0, -2.0, -3.0] and patched[:, 5, 5].tolist() == [1.5] * 3


def test_your_own_network_on_the_digits_is_explored(tmp_path):
    (tmp_path / "nets.py").write_text(
        "import torch.nn as nn\n"
        "def build(input_shape, num_classes):\n"
        "    c, h, w = input_shape\n"
        "    return nn.Sequential(nn.Conv2d(c, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
        "                         nn.Flatten(), nn.Linear(6 * (h // 2) * (w // 2), num_classes))\n"
    )
    run = tmp_path / "run"
    argv = ["train", "--dataset", "digits", "--model", f"{tmp_path / 'nets.py'}:build", "--out", str(run)]
    assert main([*argv, *QUICK]) == 0
    runs = served.load_runs([run])
    with page_client(server.create_app(runs)) as client:
        layers = client.get("/api/runs/0/layers").json()
        assert layers["input_shape"] == [1, 8, 8] and layers["classes"] == [str(k) for k in range(10)]
        assert [step["kind"] for step in layers["layers"]][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
        picked = client.get("/api/runs/0/test?class=7").json()
        forward = client.post("/api/runs/0/forward", json={"image": picked["image"]}).json()
        assert len(forward["probabilities"]) == 10 and picked["class"] == "7"


def test_an_upload_to_a_gray_run_of_another_size_is_made_that_size(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--model", "vgg-mini", "--out", str(run), *QUICK]) == 0
    runs = served.load_runs([run])
    picture = np.full((50, 40), 255, np.uint8)
    picture[10:40, 15:25] = 0  # a dark stroke on white paper: inverted, as the digits are light on black
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    with page_client(server.create_app(runs)) as client:
        answer = client.post("/api/image", content=buffer.getvalue(), headers={"Content-Type": "image/png"})
    image = inputs.decode_image(answer.json()["image"], (1, 8, 8))
    assert image.shape == (8, 8) and answer.json()["inverted"] is True and image.max() == 255


def test_a_network_with_its_own_forward_is_walked_as_it_runs(tmp_path):
    """Functional relu, flatten and tanh between the modules: the columns are the modules as forward()
    called them, and each close-up works on what its module really received."""
    (tmp_path / "own.py").write_text(
        "import torch, torch.nn as nn, torch.nn.functional as F\n"
        "class Own(nn.Module):\n"
        "    def __init__(self, c, k):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, 4, 3, padding=1)\n"
        "        self.pool = nn.MaxPool2d(2)\n"
        "        self.fc = nn.Linear(4 * 4 * 4, k)\n"
        "    def forward(self, x):\n"
        "        x = self.pool(F.relu(self.conv(x)))\n"
        "        return self.fc(torch.tanh(x.flatten(1)))\n"
        "def build(input_shape, num_classes):\n"
        "    return Own(input_shape[0], num_classes)\n"
    )
    run = tmp_path / "run"
    argv = ["train", "--dataset", "digits", "--model", f"{tmp_path / 'own.py'}:build", "--out", str(run)]
    assert main([*argv, *QUICK]) == 0
    runs = served.load_runs([run])
    net = runs[0].network
    assert net.traced and [s.kind for s in net.steps] == ["Conv2d", "MaxPool2d", "Linear"]
    with page_client(server.create_app(runs)) as client:
        layers = client.get("/api/runs/0/layers").json()
        assert layers["traced"] is True
        image = runs[0].tests.images[3]
        body = {"image": b64(image), "layer": 2, "channel": 1}
        dense = client.post("/api/runs/0/explain", json=body).json()
        model = cnnlab.load_run(run).model
        with torch.no_grad():
            x = torch.from_numpy(runs[0].dataset.normalize(image.reshape(1, 1, 8, 8)))
            pooled = model.pool(torch.relu(model.conv(x)))
            received = torch.tanh(pooled.flatten(1))[0].numpy()  # what fc gets
            expected = float(model.fc(torch.from_numpy(received)[None])[0, 1])
        assert dense["value"] == pytest.approx(expected, abs=1e-5)
        assert dense["sum"] == pytest.approx(expected, abs=1e-4)
        conv = client.post(
            "/api/runs/0/conv", json={"image": b64(image), "layer": 0, "channel": 2, "cell": [4, 4]}
        ).json()
        assert conv["cell"]["field"] is None  # no receptive field claimed for unknown code between layers
        pool = client.post("/api/runs/0/pool", json={"image": b64(image), "layer": 1, "channel": 0}).json()
        assert min(min(row) for row in pool["output"]) >= 0  # it received the relu's output, not the conv's
