"""How cnnlab's objects show themselves in a notebook: small HTML pieces (tables, embedded PNGs)
and a list of figures that displays as one column of pictures.

IPython's rich display protocol asks an object for ``_repr_html_`` or ``_repr_png_``; these
helpers build what those methods return. Every value is escaped, so a run directory named ``<b>``
shows as text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

from matplotlib.figure import Figure

from cnnlab.report.figures import png_bytes

__all__ = ["Figures", "image_tag", "table", "note"]


def image_tag(figure: Figure | bytes, alt: str, scale: float | None = None) -> str:
    """An ``<img>`` holding the figure as a base64 PNG. With ``scale``, its CSS width is that share of
    the PNG's pixel width (the rest of the pixels sharpen it on a dense screen)."""
    png = figure if isinstance(figure, bytes) else png_bytes(figure)
    data = base64.b64encode(png).decode("ascii")
    width = ""
    if scale is not None:
        pixels = int.from_bytes(png[16:20], "big")  # the PNG header's width field (IHDR)
        width = f' width="{round(pixels * scale)}"'
    return f'<img alt="{html.escape(alt)}"{width} src="data:image/png;base64,{data}">'


def table(header: Sequence[str] | None, rows: Iterable[Sequence[object]], *, first_is_header=False) -> str:
    """An HTML table of ``rows`` (each cell as text, escaped); ``first_is_header`` makes each row's
    first cell a row heading (for label -> value tables)."""
    head = (
        "" if header is None else "<thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    )
    head += "</tr></thead>" if header is not None else ""
    body = []
    for row in rows:
        cells = [html.escape(str(c)) for c in row]
        if first_is_header and cells:
            body.append(f"<tr><th style='text-align:left'>{cells[0]}</th>" + _cells(cells[1:]) + "</tr>")
        else:
            body.append("<tr>" + _cells(cells) + "</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def _cells(cells: Sequence[str]) -> str:
    return "".join(f"<td style='text-align:left'>{c}</td>" for c in cells)


def note(text: str) -> str:
    """A line of grey explanatory text."""
    return f'<div style="color:#555;font-size:90%">{html.escape(text)}</div>'


class Figures(list):
    """A list of figures (``run.show_features(image)`` gives one per layer) that a notebook shows as
    the pictures themselves, one under the other, instead of a list of ``<Figure ...>`` lines."""

    def _repr_html_(self) -> str:
        return "".join(f"<div>{image_tag(f, f.get_suptitle() or 'figure')}</div>" for f in self)

    def __repr__(self) -> str:
        return f"Figures({len(self)} figure{'s' if len(self) != 1 else ''})"
