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
        backends = "torch, numpy" if spec.build_numpy is not None else "torch"
        assert line == f"{name:<{width}}  {spec.description}  [{backends}]"
    listed = dict(re.match(r"(\S+) +(.*)  \[(.*)\]$", line).group(1, 3) for line in lines)
    assert listed["seed"] == listed["convnet"] == "torch, numpy"  # the notebook's two, in both engines
    # Every model the README's `cnnlab models` table names is in the registry, and builds.
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### `cnnlab models`", 1)[1].split("\n### ", 1)[0]
    documented = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    assert documented and set(documented) <= set(listed)
    for name in documented:
        build_model(name)
