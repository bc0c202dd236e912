"""The documentation site documents what it should: every public name is on a reference page and
has a docstring, and every page is in the site's navigation. (`mkdocs build --strict`, in
.ci/run, checks the links and renders the docstrings; these checks need no MkDocs.)"""

import functools
import importlib
import inspect
import re
from pathlib import Path

import pytest

import cnnlab
import cnnlab.scratch

DOCS = Path(__file__).resolve().parents[1] / "docs"
MKDOCS_YML = DOCS.parent / "mkdocs.yml"
SCRATCH_MODULES = ["functional", "nn", "optim", "augment", "gradcheck"]


def documented() -> list[str]:
    """The identifiers the reference pages hand to mkdocstrings (`::: cnnlab.NAME`)."""
    pages = sorted((DOCS / "reference").glob("*.md"))
    return [name for page in pages for name in re.findall(r"^::: (\S+)$", page.read_text(), re.M)]


def resolve(identifier: str):
    """`cnnlab.scratch.nn.Conv2d` -> the object: the longest importable module, then attributes."""
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(identifier)


def undocumented(identifier: str) -> list[str]:
    """The identifier, or any public function, class, method or property it shows (a class's own and
    inherited from cnnlab's classes), that has no docstring: its own, or that of the method it
    overrides (Conv2d.forward has Module.forward's)."""
    obj = resolve(identifier)
    missing = [] if inspect.getdoc(obj) else [identifier]
    if inspect.ismodule(obj):
        for name in obj.__all__:
            member = getattr(obj, name)
            if inspect.isclass(member) or inspect.isfunction(member):
                missing += undocumented(f"{identifier}.{name}")
    elif inspect.isclass(obj):
        for name in dir(obj):
            # Its own and inherited from cnnlab's classes (Run's pictures), not object's or torch's.
            owner = next((c for c in obj.__mro__ if name in vars(c)), None)
            if name.startswith("_") or owner is None or owner.__module__.split(".")[0] != "cnnlab":
                continue
            member = vars(owner)[name]
            shown = callable(member) or isinstance(member, (property, functools.cached_property))
            if shown and not inspect.getdoc(getattr(obj, name)):
                missing.append(f"{identifier}.{name}")
    return missing


def test_every_public_name_is_on_a_reference_page():
    names = set(documented())
    pages = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    for name in cnnlab.__all__:
        if inspect.isclass(getattr(cnnlab, name)) or inspect.isfunction(getattr(cnnlab, name)):
            assert f"cnnlab.{name}" in names, name
        else:  # a constant: written about, not rendered (its value is an expression)
            assert f"## `cnnlab.{name}`" in pages, name
    scratch = {f"cnnlab.scratch.{name}" for name in cnnlab.scratch.__all__}
    assert scratch <= names, sorted(scratch - names)
    assert {"cnnlab.api.predictions.Predictions", "cnnlab.data.Dataset"} <= names
    assert any(n.endswith(".Comparison") for n in names) and any(n.endswith(".LrFind") for n in names)


@pytest.mark.parametrize("identifier", documented())
def test_what_the_reference_shows_has_a_docstring(identifier):
    assert undocumented(identifier) == []


def test_every_page_is_in_the_navigation():
    nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.(?:md|ipynb))$", MKDOCS_YML.read_text(), re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*") if p.suffix in (".md", ".ipynb")}
    assert nav == pages


def test_every_link_of_the_readme_reaches_a_file():
    """The README is the front page on GitHub, outside the site's --strict build: its links into
    docs/ (and any other relative link or picture) must name files that are there."""
    readme = DOCS.parent / "README.md"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme.read_text())
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert relative, "the README links into the site"
    assert [t for t in relative if not (DOCS.parent / t).is_file()] == []
