"""Which device a caller means: 'auto', 'cpu', 'cuda' or 'cuda:N', checked against what this
machine and this build of torch have; and in a ``torchrun`` launch, this process's rank, its GPU
and the process group (NCCL on GPUs, gloo on the CPU), for the trainer and the dataset runner
alike. A leaf, like :mod:`adain_cuda._files`: every layer uses it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Placement", "cpu_computes_bf16", "parse_device", "place"]


def parse_device(device: str | torch.device | None, name: str = "device") -> torch.device:
    """'auto' (or None): CUDA when available, else the CPU. Unknown or absent devices are a
    ValueError naming the parameter ``name``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown `{name}` {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this build of torch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"`{name}` {str(device)!r} asked for, but {why}; use `{name}` 'cpu' (or 'auto')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"`{name}` {str(device)!r} does not exist: {torch.cuda.device_count()} GPU(s) visible")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported `{name}` {str(device)!r}: use 'cpu' or 'cuda'")
    return dev


def cpu_computes_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX, as oneDNN sees it).
    Without it bfloat16 convolutions are emulated and run many times slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class Placement:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 writes the shared files (checkpoints and logs, the merged dataset lists)."""
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
