"""Where the explorer's requests compute: threads off the event loop, as many as there are CPUs
for the model's work, and their own few for decoding uploads."""

from __future__ import annotations

__all__ = ["Workers"]


class Workers:
    """Where requests compute: at most one thread per CPU at a time, the rest wait their turn in
    order. More would only contend: each forward pass is a few milliseconds of one core. Uploads
    decode on threads of their own, at most ``decode.MAX_CONCURRENT`` at once, so a burst of them
    neither multiplies the memory a decode takes nor holds up the forward passes."""

    def __init__(self, torch_threads: int | None):
        import threading

        self.torch_threads = torch_threads
        self.limiters: dict = {}  # made on first use: anyio wants a running event loop
        self.local = threading.local()

    async def run(self, work, *args):
        import os

        return await self._on("compute", os.cpu_count() or 1, work, *args)

    async def decode(self, work, *args):
        from cnnlab.data.decode import MAX_CONCURRENT

        return await self._on("decode", MAX_CONCURRENT, work, *args)

    async def _on(self, pool: str, size: int, work, *args):
        import anyio

        if pool not in self.limiters:
            self.limiters[pool] = anyio.CapacityLimiter(size)
        return await anyio.to_thread.run_sync(self._call, work, *args, limiter=self.limiters[pool])

    def _call(self, work, *args):
        if self.torch_threads and not getattr(self.local, "ready", False):
            import torch

            # Per thread: a new thread would otherwise start an OpenMP team of its own size, and teams
            # spinning on the same cores make a convolution many times slower (the docs' results page).
            torch.set_num_threads(self.torch_threads)
            self.local.ready = True
        return work(*args)
