"""Several processes training one model, without the DDP wrapper.

DistributedDataParallel all-reduces one *summed* gradient through backward hooks; gradient surgery needs each task's
gradient first, and several backward passes per step break DDP's hooks. So every process keeps a full copy of the
model, starts from rank 0's parameters (:meth:`Group.broadcast_module`), trains on its slice of each global batch
(:meth:`Group.shard`), and the step's whole gradient buffer (the [T, P] Jacobian, the task-specific parameters'
gradients, the losses) is summed across processes in one ``all_reduce``; each process weighs its rows by its share
of the task's examples, so the sum is the gradient of the mean loss over the global batch. Then every process runs
the same aggregator on the same matrix (seeded identically) and takes the same step: the parameters stay equal
without another collective. Communication per step: T times a DDP step's (one [T, P] buffer instead of [P]).

Launching (``torchrun``) and reading its environment belong to the stage layer (``stages/_runner.py``); this
module takes the rank and world size as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """This process's place among ``world`` training processes; ``Group()`` is one process (no communication)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0  # the GPU of this process on its machine

    @property
    def main(self) -> bool:
        """Rank 0: the one process that evaluates and writes (checkpoints, models, logs, metrics)."""
        return self.rank == 0

    def place(self, device: torch.device) -> torch.device:
        """``device`` for this process: its own GPU (``cuda:<local_rank>``), or the device as it is."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.world > 1 else device

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This process's disjoint slice of a global batch: every ``world``-th row from ``rank`` (length-grouped
        batches stay balanced). A batch smaller than ``world`` leaves some processes without an example."""
        return rows[self.rank :: self.world]

    def all_reduce_(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over every process, in place."""
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        if self.world > 1:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def from_main(self, value: T) -> T:
        """Rank 0's ``value`` on every process (any picklable object)."""
        if self.world == 1:
            return value
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """``value`` of every process, in rank order."""
        if self.world == 1:
            return [value]
        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out


def backend_for(device: torch.device) -> str:
    """nccl between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def join(device: torch.device, rank: int, world: int, local_rank: int, init_method: str = "env://") -> Group:
    """Join the process group (``env://``: the rendezvous ``torchrun`` set up) and return this process's place.
    Generous timeout: the other processes wait while rank 0 evaluates an epoch."""
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend_for(device), init_method=init_method, rank=rank, world_size=world, timeout=timedelta(hours=2)
    )
    return Group(rank, world, local_rank)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
