"""The evaluate and report workflows as library functions (cnnlab.runs.reporting), the run
loader's config, and report.html's structure read back with an HTML parser."""

import fnmatch
import html.parser
import importlib.resources
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from cnnlab.report.html import ReportParts, render
from cnnlab.runs.loader import load_run
from cnnlab.runs.reporting import REPORT_HTML, evaluate, run_evaluation, write_report


@pytest.fixture
def preset_run(trained_run, tmp_path):
    """A copy of the trained run whose config.json names a preset its own values override, as
    `cnnlab train --preset convnet-full --epochs 2 --lr 0.01 ...` would save it."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    config["preset"] = "convnet-full"  # epochs=20, lr=6e-3, translate=1, hflip, ema=0.99, ...
    (run / "config.json").write_text(json.dumps(config))
    return run, config


def test_loaded_config_is_the_saved_one_even_with_a_preset(preset_run):
    run, saved = preset_run
    config = load_run(run).config
    assert config.preset == "convnet-full"
    assert config.to_dict() == {**saved, "betas": tuple(saved["betas"])}
    assert (config.epochs, config.lr, config.translate) == (2, 0.01, 0)


class Tables(html.parser.HTMLParser):
    """Each table's rows as lists of cell texts, keyed by the id of the section holding it."""

    def __init__(self):
        super().__init__()
        self.section, self.tables, self.row, self.cell = None, {}, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.section = dict(attrs)["id"]
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr":
            self.tables.setdefault(self.section, []).append(self.row)


def tables_of(page: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def test_report_lists_each_config_option_once_with_its_saved_value(preset_run, tmp_path):
    run, saved = preset_run
    path = write_report(run, tmp_path / "page.html")
    assert path == tmp_path / "page.html"
    tables = tables_of(path.read_text())
    labels = Counter(row[0] for rows in tables.values() for row in rows)
    for option in saved:
        assert labels[option] == 1, f"{option!r} appears {labels[option]} times on the page"
    shown = {row[0]: row[1] for row in tables["config"][1:]}  # after the header row
    assert list(shown) == list(saved)
    assert (shown["preset"], shown["epochs"], shown["lr"], shown["translate"]) == (
        "convnet-full",
        "2",
        "0.01",
        "0",
    )


def test_write_report_defaults_to_the_run_directory(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert write_report(run) == run / REPORT_HTML
    assert write_report(load_run(run), split="valid") == run / REPORT_HTML  # a loaded run works too
    assert "valid accuracy" in (run / REPORT_HTML).read_text()


def test_the_page_escapes_what_it_shows():
    parts = ReportParts(
        title="run <script>alert(1)</script>",
        summary={"run directory": "/tmp/<b>&"},
        config={"out": "<i>x</i>", "betas": (0.9, 0.99), "grad_clip": None},
        per_class=[],
        pairs=[],
        curves_png=None,
        confusion_png=b"\x89PNG",
        misclassified_png=b"\x89PNG",
        filters_png=None,
    )
    page = render(parts)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "/tmp/&lt;b&gt;&amp;" in page
    assert (
        "<td>&lt;i&gt;x&lt;/i&gt;</td>" in page
        and "<td>[0.9, 0.99]</td>" in page
        and "<td>default</td>" in page
    )
    assert "no complete epoch yet" in page and "this model has no convolution layer" in page
    assert page.count("data:image/png;base64,") == 2


def test_the_template_ships_as_package_data():
    template = importlib.resources.files("cnnlab.report") / "templates" / "report.html.j2"
    assert template.is_file()
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["cnnlab.report"]
    assert any(fnmatch.fnmatch("templates/report.html.j2", p) for p in patterns)
    assert any(d.startswith("jinja2") for d in pyproject["project"]["dependencies"])


def test_evaluate_returns_the_metrics_and_writes_what_the_command_writes(trained_run, tmp_path):
    before = sorted(p.name for p in trained_run.iterdir())
    numbers = evaluate(trained_run, save=False)
    assert sorted(p.name for p in trained_run.iterdir()) == before  # nothing written
    assert numbers["split"] == "test" and numbers["images"] == 200 and 0 <= numbers["accuracy"] <= 1
    assert len(numbers["per_class"]) == 10 and len(numbers["confusion"]) == 10
    result = run_evaluation(trained_run, "valid", out=tmp_path / "eval")
    assert [p.name for p in result.written] == [
        "confusion-valid.png",
        "misclassified-valid.png",
        "evaluation-valid.json",
    ]
    assert json.loads((tmp_path / "eval" / "evaluation-valid.json").read_text()) == result.metrics
    assert result.metrics["images"] == 100
