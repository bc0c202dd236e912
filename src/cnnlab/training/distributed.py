"""Training under torchrun: DistributedDataParallel, gloo on CPU and NCCL on GPU.

    torchrun --nproc_per_node=2 -m cnnlab train --batch-size 128     # global batch 2 x 128

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; with WORLD_SIZE > 1 cnnlab joins the process
group. Every global batch of ``batch_size * world_size`` images from the shared, seeded epoch
order is cut into one contiguous piece per rank, so N processes see exactly the batches one
process would see with an N-times larger batch, and DDP's gradient average is that batch's
gradient. Losses and accuracies are all-reduced every step, so every rank holds the numbers a
single process would report; rank 0 alone prints and writes the run directory.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

# A peer that dies mid-collective must not hang the others for torch's default 30 minutes.
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=120)


@dataclasses.dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, global_batch: Any) -> Any:
        """This rank's contiguous piece of a global batch (an array or a device tensor), as
        ``np.array_split`` cuts it: sizes differ by at most one, the larger pieces first."""
        if not self.distributed:
            return global_batch
        base, extra = divmod(len(global_batch), self.size)
        start = self.rank * base + min(self.rank, extra)
        return global_batch[start : start + base + (self.rank < extra)]

    def sum(self, *values: float) -> tuple[float, ...]:
        """Sum each value over all ranks (identity in a single process)."""
        if not self.distributed:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor)
        return tuple(tensor.cpu().tolist())


SINGLE = World()


def from_environment() -> World:
    """The world torchrun describes in the environment; a single process without it."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(
        rank=int(os.environ.get("RANK", "0")), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )


def _collective_device():
    import torch
    import torch.distributed as dist

    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )


def init(world: World, device_type: str) -> None:
    """Join the process group torchrun set up (gloo on CPU, NCCL on GPU)."""
    if not world.distributed:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device_type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)


def wrap(model, world: World, device):
    """DDP around the model in a distributed run; the model itself otherwise."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def broadcast(obj, world: World):
    """Rank 0's ``obj`` on every rank (e.g. the run directory's name)."""
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
