"""The runs being served: each loaded through the one run loader, checked, and followed.

A run still training is followed: ``refresh`` reloads it when a new checkpoint has landed (the
server only ever reads the run directory), and each reload bumps the run's ``version`` so the page
knows to redraw. What the API computes for a run is in ``compute``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.inspect.explorer import inputs, network
from cnnlab.inspect.explorer.exciting import TopImages

if TYPE_CHECKING:
    from cnnlab.data.dataset import Dataset

__all__ = ["Served", "load_runs", "refresh", "progress"]


@dataclasses.dataclass
class Served:
    """One run as the page sees it."""

    name: str  # the run directory's name, never its path
    model: str
    backend: str
    accuracy: float | None  # the test accuracy the run reported, if finished
    network: network.Network
    tests: inputs.TestImages | None
    tests_note: str  # where the test images came from, or why there are none
    run_dir: Path = Path()  # where to look for new epochs; never sent to the page
    epochs: int = 0  # planned
    history: list = dataclasses.field(default_factory=list)  # one dict per epoch saved
    version: int = 0  # bumped each time a new checkpoint is loaded
    seen: tuple = ()  # the checkpoint (and summary) this version was loaded from
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    classes: tuple[str, ...] = ()  # the run's class names, in label order
    dataset: Dataset = dataclasses.field(kw_only=True)  # input shape, colour and normalisation
    top: TopImages = dataclasses.field(init=False, repr=False)  # the run directory's, computed when asked

    def __post_init__(self) -> None:
        self.top = TopImages(self.run_dir)

    @property
    def finished(self) -> bool:
        return self.accuracy is not None

    def as_json(self, index: int) -> dict:
        return {
            "id": index,
            "name": self.name,
            "model": self.model,
            "backend": self.backend,
            "test_accuracy": self.accuracy,
            "test_images": len(self.tests.labels) if self.tests is not None else 0,
            "test_note": self.tests_note,
            "finished": self.finished,
            "epochs_done": len(self.history),
            "epochs": self.epochs,
            "version": self.version,
            "classes": list(self.classes),
        }


def _stamp(run_dir: Path) -> tuple:
    """What changes when a run saves an epoch or finishes: its checkpoint's and summary's times."""
    from cnnlab.training.rundir import CHECKPOINT, SUMMARY

    stamps: list[tuple[int, int] | None] = []
    for name in (CHECKPOINT, SUMMARY):
        try:
            stat = (run_dir / name).stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def _loaded(path):
    """(the run loaded by the one run loader, its Network, the stamp it was loaded at)."""
    from cnnlab.errors import RunDirError
    from cnnlab.inspect.describe import DescribeError
    from cnnlab.inspect.saliency import explainer_for
    from cnnlab.runs.loader import load_run

    stamp = _stamp(Path(path))
    loaded = load_run(path)
    try:
        net = network.Network(loaded.model, loaded.dataset)
    except DescribeError as exc:
        raise RunDirError(f"{loaded.path}: cannot explore model {loaded.config.model!r} ({exc})") from None
    explainer_for(net.model)  # its hooks go on now, before any request runs the model
    return loaded, net, stamp


def load_runs(paths, data_dir: str | None = None) -> list[Served]:
    """Every run through the one run loader (the weights each reported), checked before serving."""
    found: dict[tuple, tuple] = {}
    served = []
    for path in paths:
        loaded, net, stamp = _loaded(path)
        config = loaded.config
        where = (config.dataset, config.image_size, config.color, config.data_dir, str(data_dir))
        if where not in found:  # runs on the same data share one copy of the test set
            found[where] = inputs.TestImages.find(loaded, data_dir)
        tests, note = found[where]
        run = Served(
            Path(loaded.path).name,
            loaded.config.model,
            getattr(loaded.config, "backend", "torch"),
            None,
            net,
            tests,
            note,
            Path(loaded.path),
            loaded.config.epochs,
            classes=tuple(loaded.class_names),
            dataset=loaded.dataset,
        )
        _update(run, loaded, net, stamp)
        served.append(run)
    return served


def _update(run: Served, loaded, net, stamp) -> None:
    run.network, run.seen = net, stamp
    run.history = [_finite(row) for row in loaded.history]
    run.accuracy = (loaded.summary or {}).get("test_accuracy")


def _finite(row: dict) -> dict:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}


def refresh(run: Served) -> bool:
    """Reload ``run`` if a new checkpoint (or its summary) landed since it was loaded; whether it did.
    A run caught mid-write or damaged keeps what it has and is tried again next time."""
    from cnnlab.errors import CnnlabError

    if run.finished or _stamp(run.run_dir) == run.seen:
        return False
    with run.lock:
        if _stamp(run.run_dir) == run.seen:  # another request reloaded it meanwhile
            return False
        try:
            loaded, net, stamp = _loaded(run.run_dir)
        except CnnlabError:
            return False
        _update(run, loaded, net, stamp)
        run.version += 1
        return True


def progress(run: Served) -> dict:
    """The run's epochs so far, after looking for a new one."""
    refresh(run)
    return {**run.as_json(0), "history": run.history}
