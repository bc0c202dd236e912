"""MkDocs hook: a page with no sections gives its text the table of contents' column, which would
stay empty (a command's output and the guide's tables then need no sideways scrolling)."""

from __future__ import annotations


def on_page_context(context, page, config, nav):
    # The page's title is the table's one top entry; its sections are that entry's children.
    if not any(entry.children for entry in page.toc.items):
        page.meta["hide"] = [*page.meta.get("hide", []), "toc"]
    return context
