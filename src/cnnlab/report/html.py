"""``report.html``: one self-contained page about a run, to open anywhere or send to anyone.

Every image is a base64 ``data:`` URI and the style sheet is inline, so the page needs no other
file and no network.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { padding: .25em .8em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; } td:first-child, th:first-child, table.text td, table.text th { text-align: left; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
nav a { margin-right: 1em; } .muted { color: #777; } pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
"""

SECTIONS = (
    ("summary", "Summary"),
    ("config", "Configuration"),
    ("curves", "Training curves"),
    ("per-class", "Per-class scores"),
    ("confusion", "Confusion matrix"),
    ("misclassified", "Misclassified examples"),
    ("filters", "First-layer filters"),
)


@dataclasses.dataclass
class ReportParts:
    """Everything the page shows; the PNGs as bytes (None when the run has no such picture)."""

    title: str
    summary: dict  # label -> value, shown as a two-column table
    config: dict
    per_class: list[dict]
    pairs: list[dict]
    curves_png: bytes | None
    confusion_png: bytes
    misclassified_png: bytes
    filters_png: bytes | None


def _img(png: bytes | None, alt: str, missing: str) -> str:
    if png is None:
        return f'<p class="muted">{html.escape(missing)}</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(header: list[str] | None, rows: list[list], css: str = "") -> str:
    head = (
        ""
        if header is None
        else "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>"
    )
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}">{head}<tbody>{body}</tbody></table>'


def _show(value) -> str:
    return (
        "default" if value is None else json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    )


def _bodies(parts: ReportParts) -> dict[str, str]:
    per_class = _table(
        ["class", "precision", "recall", "F1", "support"],
        [
            [r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
            for r in parts.per_class
        ],
    )
    pairs = _table(
        ["true class", "predicted as", "images", "share of the true class"],
        [[p["true"], p["predicted"], p["count"], f"{p['share_of_true']:.1%}"] for p in parts.pairs],
    )
    return {
        "summary": _table(None, [[k, v] for k, v in parts.summary.items()], "text"),
        "config": _table(["option", "value"], [[k, _show(v)] for k, v in parts.config.items()], "text")
        + '<p class="muted">Rerun it with <code>cnnlab train --config RUN_DIR/config.json</code>.</p>',
        "curves": _img(parts.curves_png, "training curves", "no complete epoch yet, so no curves"),
        "per-class": per_class + "<h3>Top confused pairs</h3>" + pairs,
        "confusion": _img(parts.confusion_png, "confusion matrix", ""),
        "misclassified": _img(parts.misclassified_png, "misclassified examples", ""),
        "filters": _img(parts.filters_png, "first-layer filters", "this model has no convolution layer"),
    }


def render(parts: ReportParts) -> str:
    bodies = _bodies(parts)
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name in SECTIONS)
    sections = "\n".join(
        f'<section id="{key}"><h2>{html.escape(name)}</h2>\n{bodies[key]}\n</section>'
        for key, name in SECTIONS
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(parts.title)}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{html.escape(parts.title)}</h1><nav>{nav}</nav>\n{sections}\n"
        f'<p class="muted">Made by <code>cnnlab report</code>.</p></body></html>\n'
    )
