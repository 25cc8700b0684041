"""Where a training process runs: its rank in a ``torchrun`` launch, its device, and the process
group (NCCL on GPUs, gloo on the CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .._device import parse_device

__all__ = ["Placement", "place"]


@dataclass(frozen=True)
class Placement:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints and logs."""
        return self.rank == 0


def _launch() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def place(device: str) -> Placement:
    """Joins the process group of a multi-process launch (once) and picks this process's device:
    ``device`` as given, or in a multi-GPU launch with 'auto'/'cuda' the GPU of its local rank."""
    rank, world, local_rank = _launch()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and device != "cpu" else "gloo")
    multi_gpu = world > 1 and device in ("auto", "cuda") and torch.cuda.is_available()
    dev = parse_device(f"cuda:{local_rank}" if multi_gpu else device)
    if dev.type == "cuda":
        if dev.index is None:  # "auto" / "cuda": set_device needs an index
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
    return Placement(rank, world, dev)
