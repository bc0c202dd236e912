"""Forward hooks that hand what a model's layers give to whoever asked, in the thread that asked.

One model may serve several threads at once (the explorer answers concurrent requests with one
model), so a hook keeps nothing itself: each call of a hooked layer goes to the listener the
current thread set with ``record``, and in a thread that set none the hook does nothing. The
summary of a network with its own ``forward()``, ``cnnlab show features``, the explorer's walk and
Grad-CAM all capture layers this way.

A listener is called as ``listener(name, module, inputs, output)``, ``name`` the module's path
(as in state_dict keys); what it returns, when not None, replaces the layer's output, as torch's
forward hooks allow.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Listener", "LayerHooks", "recording"]

Listener = Callable[[str, Any, tuple, Any], Any]


class LayerHooks:
    """A forward hook on each module of ``model`` named in ``names``, until ``remove``."""

    def __init__(self, model, names: Iterable[str]):
        modules = dict(model.named_modules())
        self._local = threading.local()
        self._handles = [
            modules[name].register_forward_hook(self._hook(name)) for name in dict.fromkeys(names)
        ]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            listener = getattr(self._local, "listener", None)
            return None if listener is None else listener(name, module, inputs, output)

        return hook

    @contextlib.contextmanager
    def record(self, listener: Listener) -> Iterator[None]:
        """While the block runs, this thread's calls of the hooked layers go to ``listener``."""
        outer = getattr(self._local, "listener", None)
        self._local.listener = listener
        try:
            yield
        finally:
            self._local.listener = outer

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


@contextlib.contextmanager
def recording(model, names: Iterable[str], listener: Listener) -> Iterator[None]:
    """Hooks on ``names`` for one block: added, recording into ``listener`` in this thread, then removed."""
    hooks = LayerHooks(model, names)
    try:
        with hooks.record(listener):
            yield
    finally:
        hooks.remove()
