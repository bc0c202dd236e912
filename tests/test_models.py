"""The model registry and ``cnnlab models``, which lists it."""

import re
from pathlib import Path

from cnnlab.cli import main
from cnnlab.models import MODELS, build_model


def test_cnnlab_models_lists_every_model_with_its_description_and_backends(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(MODELS)
    width = max(map(len, MODELS))
    for line, (name, spec) in zip(lines, MODELS.items()):
        backends = "torch, numpy" if spec.numpy else "torch"
        assert line == f"{name:<{width}}  {spec.description}  [{backends}]"
    listed = dict(re.match(r"(\S+) +(.*)  \[(.*)\]$", line).group(1, 3) for line in lines)
    assert listed["seed"] == listed["convnet"] == "torch, numpy"  # the notebook's two, in both engines
    # Every model the `cnnlab models` page's table names is in the registry, and builds.
    page = (Path(__file__).parents[1] / "docs" / "guide" / "models.md").read_text()
    documented = re.findall(r"^\| `([^`]+)` \|", page, flags=re.M)
    assert documented and set(documented) <= set(listed)
    for name in documented:
        build_model(name, (1, 28, 28), 10)


def test_convnet_pool_bn_normalises_the_pooled_maps():
    """Each batch norm of convnet-pool-bn sees the max-pooled map (a quarter of the values) and, in
    training, makes each of its channels zero-mean and unit-variance over the batch."""
    import torch
    from torch import nn

    model = build_model("convnet-pool-bn", (1, 28, 28), 10).train()
    seen = {}
    for index, layer in enumerate(model):
        if isinstance(layer, nn.BatchNorm2d):
            layer.register_forward_hook(
                lambda m, args, out, i=index: seen.update({i: (args[0], out.clone())})
            )
    model(torch.randn(16, 1, 28, 28))
    # (The output is cloned: the ReLU after it runs in place.)
    assert [tuple(x.shape) for x, _ in seen.values()] == [(16, 32, 13, 13), (16, 64, 5, 5)]
    assert all(isinstance(model[i - 1], nn.MaxPool2d) for i in seen)
    for _, out in seen.values():
        torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(out.shape[1]), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            out.var((0, 2, 3), unbiased=False), torch.ones(out.shape[1]), atol=1e-3, rtol=0
        )
