"""DistributedDataParallel from ``torchrun``'s environment: rank, world size, the process group.

``torchrun --nproc_per_node N -m amoseg train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; a plain
``amoseg train`` is rank 0 of 1 and never touches ``torch.distributed``. NCCL on GPUs, gloo on CPU. Only
rank 0 writes files; every rank draws its own patches (seeded with its rank).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank among world_size processes, local_rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


#: A run without torchrun.
SINGLE_PROCESS = Context()


def context_from_environment() -> Context:
    """The torchrun context, or a single process when the variables are absent."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return SINGLE_PROCESS
    return Context(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def start(context: Context, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA, gloo otherwise); nothing for a single process."""
    if not context.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=context.rank, world_size=context.world_size)


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (the tensor itself without a process group); returned on the tensor's device."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    moved = tensor.to(_collective_device())
    dist.all_reduce(moved)
    return moved.to(tensor.device)


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's flag on every rank (so all ranks stop at the same iteration)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_collective_device())
    dist.broadcast(value, src=0)
    return bool(value.item())


def all_gather_strings(value: str) -> list[str]:
    """Every rank's string, in rank order."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return [str(item) for item in gathered]
