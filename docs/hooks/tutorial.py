"""MkDocs hook: the site's tutorial page is docs/tutorial.ipynb run with the test suite's small
settings, so the page shows real outputs while the committed notebook keeps none.

Run in full, the tutorial trains for about 15 minutes on 2 cores; with the settings of
tests/tutorial_settings.py it runs in a couple of minutes, so CI can build the site on every run.
The copy it executes lives in build/docs-tutorial/ (never committed), is made again whenever the
notebook, the settings or the note change (`scripts/docs.sh build` always makes it afresh), and
opens with a note that says which settings made its numbers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import nbclient
import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
WORK = ROOT / "build" / "docs-tutorial"
EXECUTED = WORK / "tutorial.ipynb"

sys.path.insert(0, str(ROOT))  # the settings are the test suite's, written in one place
from tests.tutorial_settings import small_settings  # noqa: E402

# A notebook's Markdown is rendered by nbconvert, not MkDocs: plain Markdown, links to built pages.
NOTE = """\
> **Run with small settings.** This page is `docs/tutorial.ipynb` as the site's build ran it, on
> the real Fashion-MNIST ({directory}), with the small settings the test suite uses
> (`tests/tutorial_settings.py`), so that building the site takes minutes rather than the quarter
> of an hour the full lesson trains for. Every output below is real, but its accuracies and curves
> are those of a few hundred images and two epochs. To see the lesson's own figures, open the
> notebook in Jupyter and run it with its own settings
> ([Getting started](getting-started.html#the-tutorial-notebook)). The settings used here are
> those of the first cell below, tagged `parameters`.
"""


def _settings() -> str:
    return small_settings(None, "runs")  # relative to the kernel's directory, WORK


def _fingerprint(settings: str) -> str:
    return hashlib.sha256(NOTEBOOK.read_bytes() + settings.encode() + NOTE.encode()).hexdigest()


def _is_current(fingerprint: str) -> bool:
    if not EXECUTED.is_file():
        return False
    return nbformat.read(EXECUTED, as_version=4).metadata.get("cnnlab_docs_source") == fingerprint


def _execute(settings: str, fingerprint: str) -> None:
    from cnnlab.data import get_source

    directory, why = get_source("fashion-mnist").locate()
    if directory is None:
        raise PluginError(f"the tutorial needs Fashion-MNIST: {why}; run scripts/setup.sh first")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source = settings
    env = dict(os.environ, MPLBACKEND="Agg")  # figures as the test suite gets them: PNG outputs
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(WORK)}}
    )
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as error:
        raise PluginError(f"the tutorial failed to run: {str(error).strip().splitlines()[-1]}") from None
    note = NOTE.format(directory=directory)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
    nb.metadata["cnnlab_docs_source"] = fingerprint
    nbformat.write(nb, EXECUTED)


@event_priority(100)  # before mkdocs-jupyter's on_files, which must see the executed copy
def on_files(files: Files, config) -> Files:
    settings = _settings()
    fingerprint = _fingerprint(settings)
    if not _is_current(fingerprint):
        _execute(settings, fingerprint)
    files.remove(files.get_file_from_path("tutorial.ipynb"))
    # A real file whose docs directory is WORK: mkdocs-jupyter's wrapper finds it through src_dir.
    executed = File("tutorial.ipynb", str(WORK), config["site_dir"], config["use_directory_urls"])
    files.append(executed)
    return files
