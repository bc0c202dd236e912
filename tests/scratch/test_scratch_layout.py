"""How cnnlab.scratch is laid out: each layer in the module of its op, and no module reaching into
another module's private helpers (``conv._forward``): what two modules share gets a public name."""

import ast
import importlib.util
from pathlib import Path

from cnnlab.scratch import functional as F
from cnnlab.scratch import nn

SCRATCH = Path(__file__).resolve().parents[2] / "src" / "cnnlab" / "scratch"


def is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # a name inside a module, not a module
        return False


def module_aliases(tree: ast.Module) -> set[str]:
    """The names a module binds to cnnlab modules: ``import cnnlab.x as y`` and
    ``from cnnlab.scratch import conv`` (a module, unlike ``from cnnlab.scratch.conv import conv2d``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("cnnlab")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnlab"):
            names |= {a.asname or a.name for a in node.names if is_module(f"{node.module}.{a.name}")}
    return names


def private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    aliases = module_aliases(tree)
    return [
        f"{path.name}:{node.lineno} {node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def test_no_module_calls_another_modules_private_helpers():
    offenders = [use for path in sorted(SCRATCH.rglob("*.py")) for use in private_uses(path)]
    assert not offenders, offenders


def test_the_check_finds_a_private_helper_called_through_a_module(tmp_path):
    source = "from cnnlab.scratch import conv\nfrom cnnlab.scratch.conv import conv2d\n"
    source += "conv._forward(1)\nconv.conv2d(1)\nconv2d._x\n"
    (tmp_path / "m.py").write_text(source)
    assert private_uses(tmp_path / "m.py") == ["m.py:3 conv._forward"]


def test_each_layer_lives_in_the_module_of_its_op():
    """Conv2d beside conv2d, MaxPool2d beside max_pool2d, ...; only the base classes and the two
    that wrap other layers rather than an op live elsewhere."""
    op_modules = {getattr(F, name).__module__ for name in F.__all__}
    wrappers = {"Parameter", "Module", "Sequential", "ResidualBlock", "fuse_relu"}
    homeless = [
        f"{name} in {getattr(nn, name).__module__}"
        for name in sorted(set(nn.__all__) - wrappers)
        if getattr(nn, name).__module__ not in op_modules
    ]
    assert not homeless, homeless
    assert nn.Conv2d.__module__ == F.conv2d.__module__ == "cnnlab.scratch.conv"
