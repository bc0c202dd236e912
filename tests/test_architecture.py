"""The floor plan holds: layers import only downwards, nothing imports in a circle, the training
package keeps its functions small, and the module map (docs/development.md) lists what is there.

Imports are read from the source with ``ast`` (function-level imports included), so a lazy
import that goes up a layer is caught as surely as a module-level one.
"""

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
MODULE_MAP = Path(__file__).resolve().parents[1] / "docs" / "development.md"

# Lowest first. A module may import its own layer and the ones below, never one above. Each entry
# is a whole top-level module or package (the longest matching prefix decides, so ``cnnlab.api``
# rather than ``cnnlab``): a package stands on one floor.
LAYERS = [
    ("foundation", ["cnnlab._version", "cnnlab.errors", "cnnlab.shapes", "cnnlab.shell", "cnnlab.fileio"]),
    ("data and engine", ["cnnlab.data", "cnnlab.scratch"]),
    ("models and pictures", ["cnnlab.models", "cnnlab.user_models", "cnnlab.report"]),
    ("training", ["cnnlab.training"]),
    ("runs", ["cnnlab.runs"]),
    ("inspection", ["cnnlab.inspect"]),
    ("public API", ["cnnlab", "cnnlab.api"]),
    ("command line", ["cnnlab.commands", "cnnlab.console", "cnnlab.cli", "cnnlab.__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, level = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), index
    if level is None:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS here and to docs/development.md")
    return level


def imports_of(module: str) -> set[str]:
    """The cnnlab modules ``module`` imports, anywhere in its body."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cnnlab"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            if base.split(".")[0] != "cnnlab":
                continue
            for alias in node.names:  # `from cnnlab import data` imports the module cnnlab.data
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {m for m in found if m != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_each_package_stands_on_one_floor():
    """No layer names a module inside a package, so no package is split over two floors: a module
    that must sit lower than its package belongs in a lower package."""
    inside = [p for _, prefixes in LAYERS for p in prefixes if p.count(".") > 1]
    assert not inside, f"{inside} name modules inside a package; give the whole package one layer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_goes_up_a_layer(module):
    here = layer_of(module)
    upward = sorted(m for m in GRAPH[module] if layer_of(m) > here)
    assert not upward, (
        f"{module} ({LAYERS[here][0]}) imports {', '.join(upward)} from a higher layer "
        f"({', '.join(sorted({LAYERS[layer_of(m)][0] for m in upward}))})"
    )


def test_a_command_imports_no_other_command():
    """Subcommands share what they share (the training options) through ``commands.common`` or a
    lower layer, never through another command's module."""
    borrowed = {
        module: sorted(
            m for m in GRAPH[module] if m.startswith("cnnlab.commands.") and m != "cnnlab.commands.common"
        )
        for module in MODULES
        if module.startswith("cnnlab.commands.")
    }
    assert not {module: names for module, names in borrowed.items() if names}


def test_no_import_cycles():
    """Tarjan's strongly connected components: any component of two or more modules is a cycle."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in MODULES:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_scratch_and_shapes_never_import_torch():
    for module, path in MODULES.items():
        if module.startswith(("cnnlab.scratch", "cnnlab.shapes")):
            assert not re.search(r"^\s*(import|from)\s+torch\b", path.read_text(), re.M), module


def test_no_module_imports_another_modules_private_names():
    """``from cnnlab.x import _helper`` ties a module to another's insides: what two modules share gets
    a public name in the module it belongs to."""
    offenders = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if base.split(".")[0] == "cnnlab" and private:
                offenders.append(f"{module} imports {', '.join(private)} from {base}")
    assert not offenders, offenders


def test_report_draws_from_numbers_it_is_given_and_never_imports_torch():
    """report/ makes figures and pages; models, data and inference belong to the layers above it."""
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith("cnnlab.report"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{module} imports {n}" for n in names if n.split(".")[0] == "torch"]
    assert not offenders, offenders


def test_training_functions_take_at_most_five_parameters():
    offenders = []
    for path in (SRC / "training").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                if names[:1] in (["self"], ["cls"]):
                    names = names[1:]
                if len(names) > 5:
                    offenders.append(f"{path.name}:{node.name}({', '.join(names)})")
    assert not offenders, offenders


def test_the_module_map_matches_the_packages():
    """docs/development.md lists one line per top-level package or module of cnnlab, and no other."""
    text = MODULE_MAP.read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\s*cnnlab/([A-Za-z_]+)(?:/|\.py)", section, re.M))
    present = {p.stem if p.is_file() else p.name for p in SRC.iterdir()}
    present = {n for n in present if not n.startswith("__") and n != "__pycache__" and n != "py"}
    present.discard("_version")
    assert listed == present, (
        f"the module map lists {sorted(listed - present)} not in the code; misses {sorted(present - listed)}"
    )
