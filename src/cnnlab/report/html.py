"""``report.html``: one self-contained page about a run, to open anywhere or send to anyone.

The page is ``templates/report.html.j2``, a Jinja2 template shipped with the package, rendered
with autoescaping on, so a value such as a run directory named ``<b>`` shows as text. Every image
is a base64 ``data:`` URI and the style sheet is inline, so the page needs no other file and no
network.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json

import jinja2

__all__ = ["SECTIONS", "ReportParts", "render"]

TEMPLATE = "report.html.j2"

# Anchor -> heading, in page order; the navigation bar lists them.
SECTIONS = {
    "summary": "Summary",
    "config": "Configuration",
    "curves": "Training curves",
    "per-class": "Per-class scores",
    "confusion": "Confusion matrix",
    "misclassified": "Misclassified examples",
    "filters": "First-layer filters",
}


@dataclasses.dataclass
class ReportParts:
    """Everything the page shows; the PNGs as bytes (None when the run has no such picture)."""

    title: str
    summary: dict  # label -> value, shown as a two-column table; no config option (those are below)
    config: dict  # option -> value, as config.json holds them
    per_class: list[dict]
    pairs: list[dict]
    curves_png: bytes | None
    confusion_png: bytes
    misclassified_png: bytes
    filters_png: bytes | None


def render(parts: ReportParts) -> str:
    """The page as text (UTF-8 when written)."""
    context = {field.name: getattr(parts, field.name) for field in dataclasses.fields(parts)}
    return _environment().get_template(TEMPLATE).render(sections=SECTIONS, **context)


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cnnlab.report", "templates"),
        autoescape=True,  # NOTE: select_autoescape would not escape, the name ends in .j2
        undefined=jinja2.StrictUndefined,  # a misspelt name fails here, not as a blank cell
        keep_trailing_newline=True,
    )
    env.filters.update(data_uri=_data_uri, option_row=_option_row, class_row=_class_row, pair_row=_pair_row)
    return env


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _option_row(item: tuple) -> list[str]:
    name, value = item
    if value is None:
        return [name, "default"]
    return [name, json.dumps(value) if isinstance(value, (list, tuple)) else str(value)]


def _class_row(r: dict) -> list:
    return [r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]


def _pair_row(p: dict) -> list:
    return [p["true"], p["predicted"], p["count"], f"{p['share_of_true']:.1%}"]
