"""Training progress in a Jupyter notebook: one output, updated in place.

tqdm's notebook bar needs ipywidgets (without it tqdm warns "IProgress not found" and falls back to
text), and a kernel run headless (nbclient, papermill, CI) stores each refresh of a text bar as
output of its own. IPython's display handle needs neither: the bar is one display output whose
content each update replaces, live in Jupyter and as a single final output in a saved notebook.
"""

from __future__ import annotations

import html
import time

__all__ = ["NotebookBar"]

REFRESH_SECONDS = 0.5  # at most two updates a second: each one is a message to the front end


class NotebookBar:
    """A progress bar as one display output: ``show(epoch, done)`` draws it, throttled; ``close()``
    empties it. One bar serves every epoch of a run."""

    def __init__(self, epochs: int, images: int):
        self.epochs, self.images = epochs, images
        self.handle = None
        self.shown_at = 0.0
        self.started = time.monotonic()

    def start(self, epoch: int) -> None:
        self.epoch, self.done, self.started = epoch, 0, time.monotonic()
        self._show(force=True)

    def update(self, n: int) -> None:
        self.done += n
        self._show(force=self.done >= self.images)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)

    def _show(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.shown_at < REFRESH_SECONDS:
            return
        self.shown_at = now
        bundle = self._bundle(now - self.started)
        if self.handle is None:
            from IPython.display import display

            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)

    def _bundle(self, seconds: float) -> dict[str, str]:
        share = self.done / max(1, self.images)
        rate = f", {self.done / seconds:,.0f} images/s" if seconds > 0 and self.done else ""
        text = (
            f"epoch {self.epoch}/{self.epochs}: {share:.0%} ({self.done:,} of {self.images:,} images{rate})"
        )
        return {
            "text/plain": text,
            "text/html": f'<progress value="{self.done}" max="{self.images}" style="width:30em"></progress> '
            f"{html.escape(text)}",
        }
