"""Where the model looks: ``Run.saliency`` and ``cnnlab.inspect.saliency``.

The sanity checks are those of Adebayo et al. 2018 ("Sanity Checks for Saliency Maps") on a
dataset built so that the answer is known: each class is a bright block in a place of its own,
with two dim decoy blocks elsewhere, so a model must find the bright one where it is. Most of
each map's mass must fall on that block, and re-randomising the weights must change the maps.
Grad-CAM is checked against a hand-split forward pass of the same model.
"""

import threading

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.data import FILES
from cnnlab.errors import ConfigError
from cnnlab.inspect.saliency import METHODS, Explainer, explainer_for, occlusion_patch, rectified
from cnnlab.models import MODELS, build_model
from tests.datasets import fashion_background, fashion_normalize
from tests.idx import write_idx

PLACES = [(r, c) for r in (1, 8, 15, 22) for c in (1, 11, 21)][:10]  # each class's block: 5 x 6 pixels


def blocks(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        for decoy in rng.choice([j for j in range(10) if j != k], 2, replace=False):
            r, c = PLACES[decoy]
            images[i, r : r + 5, c : c + 6] = 110
        r, c = PLACES[k]
        images[i, r : r + 5, c : c + 6] = 230
    return images


def region(label: int) -> np.ndarray:
    """The class's block with a 3-pixel margin (Grad-CAM's last layer sees 4 x 4 pixels per cell)."""
    r, c = PLACES[label]
    mask = np.zeros((28, 28), bool)
    mask[max(0, r - 3) : r + 8, max(0, c - 3) : c + 9] = True
    return mask


@pytest.fixture(scope="module")
def blocks_run(tmp_path_factory):
    """A convnet trained on the blocks (3 epochs on 800 images: 100% test accuracy), and 50 test images."""
    directory = tmp_path_factory.mktemp("blocks")
    rng = np.random.default_rng(0)
    train, test = (np.arange(1000) % 10).astype(np.uint8), (np.arange(200) % 10).astype(np.uint8)
    arrays = {"train_images": blocks(train, rng), "train_labels": train}
    arrays |= {"test_images": blocks(test, rng), "test_labels": test}
    for key, array in arrays.items():
        write_idx(directory / FILES[key].name, array)
    out = directory / "run"
    argv = ["train", "--model", "convnet", "--data-dir", str(directory), "--out", str(out), "--quiet"]
    assert (
        main(argv + ["--train-size", "800", "--valid-size", "200", "--batch-size", "50", "--epochs", "3"])
        == 0
    )
    run = cnnlab.load_run(out)
    assert run.summary["test_accuracy"] > 0.95
    return run, arrays["test_images"][:50], test[:50]


def share_in_region(maps: np.ndarray, labels: np.ndarray) -> np.ndarray:
    positive = np.clip(maps, 0, None)
    return np.array([m[region(k)].sum() / max(m.sum(), 1e-12) for m, k in zip(positive, labels)])


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, layer", [("gradient", None), ("gradcam", None), ("gradcam", "0"), ("occlusion", None)]
)
def test_most_of_the_map_falls_where_the_class_lives(blocks_run, method, layer):
    run, images, labels = blocks_run
    maps = run.saliency(images, method, layer=layer, target=labels)
    assert maps.shape == (50, 28, 28) and maps.dtype == np.float32
    share = share_in_region(maps, labels)
    area = region(4).mean()  # 17% of the image
    print(f"{method} {layer}: median share {np.median(share):.2f}, area {area:.2f}")
    assert np.median(share) > 0.8 and (share > 0.5).mean() > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_re_randomised_weights_change_the_map(blocks_run, method):
    """Adebayo et al.'s model randomisation: the same images, the weights drawn afresh."""
    run, images, labels = blocks_run
    trained = run.saliency(images, method, target=labels)
    torch.manual_seed(1)
    random = build_model("convnet", (1, 28, 28), 10).eval()
    for module in random.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    randomised = Explainer(random).maps(
        fashion_normalize(images), method, target=labels, baseline=fashion_background()
    )[0]
    ranks = [_spearman(a, b) for a, b in zip(trained, randomised)]
    print(f"{method}: mean rank correlation trained vs randomised {np.mean(ranks):.2f}")
    assert np.mean(ranks) < 0.5
    assert np.median(share_in_region(randomised, labels)) < np.median(share_in_region(trained, labels)) - 0.2


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = (np.argsort(np.argsort(m.ravel())).astype(float) for m in (a, b))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def test_gradcam_equals_a_hand_split_forward_pass(trained_run):
    """convnet = conv, ReLU, pool, conv, ReLU, pool, ...: Grad-CAM of conv 3 uses the ReLU 4's maps."""
    run = cnnlab.load_run(trained_run)
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    model, x = run.model, torch.from_numpy(fashion_normalize(images))
    features = model[:5](x).detach().requires_grad_(True)  # (6, 64, 11, 11), rectified
    logits = model[5:](features)
    targets = logits.argmax(1)
    (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), features)
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * features).sum(1, keepdim=True))
    expected = torch.nn.functional.interpolate(cam, size=(28, 28), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(run.saliency(images, "gradcam", layer="3"), expected[:, 0].detach(), atol=1e-6)
    gradient = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(gradient).gather(1, targets[:, None]).sum(), gradient)
    np.testing.assert_allclose(run.saliency(images, "gradient"), g.abs().amax(1), atol=1e-7)


def test_occlusion_is_the_probability_drop_averaged_over_covering_patches(trained_run):
    run = cnnlab.load_run(trained_run)
    image = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    got = run.saliency(image, "occlusion", target=3)[0]
    side, stride = occlusion_patch(28, 28)
    assert (side, stride) == (4, 2)
    x = torch.from_numpy(fashion_normalize(image[None]))
    with torch.inference_mode():
        base = run.model(x).softmax(1)[0, 3]
        total, count = np.zeros((28, 28)), np.zeros((28, 28))
        for top in range(0, 25, 2):
            for left in range(0, 25, 2):
                patched = x.clone()
                patched[..., top : top + 4, left : left + 4] = fashion_background()
                total[top : top + 4, left : left + 4] += float(base - run.model(patched).softmax(1)[0, 3])
                count[top : top + 4, left : left + 4] += 1
    np.testing.assert_allclose(got, total / count, atol=1e-6)


def test_the_parameters_never_collect_a_gradient_and_threads_get_their_own_answers(trained_run):
    run = cnnlab.load_run(trained_run)
    images = np.random.default_rng(2).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    alone = {
        (m, i): run.saliency(images[i], m, target=i % 10)[0]
        for m in ("gradient", "gradcam")
        for i in range(8)
    }
    together, errors = {}, []

    def work(m, i):
        try:
            for _ in range(5):
                together[(m, i)] = run.saliency(images[i], m, target=i % 10)[0]
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=key) for key in alone]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for key, expected in alone.items():
        np.testing.assert_allclose(together[key], expected, atol=1e-6, err_msg=str(key))
    assert all(p.grad is None for p in run.model.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_convolution_of_every_registry_model_has_a_gradcam(name):
    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), 10).eval()
    explainer = Explainer(model)
    x = torch.from_numpy(
        fashion_normalize(np.random.default_rng(3).integers(0, 256, (2, 28, 28), dtype=np.uint8))
    )
    for layer in explainer.convolutions:
        maps, targets = explainer.maps(x, "gradcam", layer=layer)
        assert maps.shape == (2, 28, 28) and (maps >= 0).all() and targets.shape == (2,), layer
    assert set(rectified(model)) <= set(explainer.convolutions)


def test_inputs_take_every_form_predict_takes(trained_run, tmp_path):
    from PIL import Image

    run = cnnlab.load_run(trained_run)
    picture = np.zeros((60, 40), np.uint8)
    picture[10:50, 10:30] = 220
    Image.fromarray(picture).save(tmp_path / "item.png")
    from_path = run.saliency(tmp_path / "item.png", "gradient")
    from_pil = run.saliency(Image.fromarray(picture), "gradient")
    from_list = run.saliency([str(tmp_path / "item.png"), Image.fromarray(picture)], "gradient")
    assert from_path.shape == from_pil.shape == (1, 28, 28) and from_list.shape == (2, 28, 28)
    np.testing.assert_array_equal(from_path[0], from_pil[0])
    np.testing.assert_array_equal(from_list[0], from_list[1])
    batch = np.zeros((3, 28, 28), np.uint8)
    assert run.saliency(batch, "occlusion").shape == (3, 28, 28)
    assert run.saliency(list(batch), "gradient").shape == (3, 28, 28)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"method": "lime"}, "method must be one of gradcam, gradient, occlusion. Received: method='lime'"),
        ({"method": "gradient", "layer": "3"}, "layer is for gradcam only"),
        ({"layer": "1"}, "layer must be a convolution layer of the model, one of 0, 3. Received: '1'"),
        ({"target": 10}, "target must be a class index in 0..9"),
        ({"target": -1}, "target must be a class index in 0..9"),
        ({"target": 2.5}, "target must be a class index"),
        ({"target": [1, 2, 3]}, "target must be one class, or one per image (2)"),
        ({"images": np.array([["a"]])}, "must hold numbers"),
    ],
)
def test_bad_arguments_get_one_clear_line(trained_run, kwargs, needle):
    run = cnnlab.load_run(trained_run)
    images = kwargs.pop("images", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ConfigError) as caught:
        run.saliency(images, **kwargs)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_one_explainer_per_model():
    model = build_model("convnet", (1, 28, 28), 10).eval()
    assert explainer_for(model) is explainer_for(model)
    hooks = sum(len(m._forward_hooks) for m in model.modules())
    explainer_for(model)
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks == 2  # the two ReLUs after convs
