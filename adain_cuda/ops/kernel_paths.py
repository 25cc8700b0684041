"""Which CUDA kernel path the AdaIN forward and backward take, and forcing one.

The CUDA ops choose, per call, by plane size: a warp per plane (``"warp"``, several planes a
block), a block per plane (``"block"``), a plane split over a thread-block cluster on sm_90 and
newer (``"cluster"``), all three holding the plane in registers, or the chunked general path
(``"general"``); docs/kernels.md describes them. Tests and benchmarks force each path in turn to
check and compare all of them on the same shapes; a forced path that cannot run a shape falls
back to the general one, and :func:`kernel_path` says what a call would take.

    with forced_kernel_path("cluster"):
        out = adain_cuda.adain(content, style)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from . import _library

PATHS = ("auto", "warp", "block", "cluster", "general")


def kernel_path(content: Tensor, *, backward: bool = False) -> str:
    """The path ``adain`` (or, with ``backward=True``, its backward) takes for this content map:
    ``"warp"``, ``"block"``, ``"cluster"`` or ``"general"`` on CUDA, ``"cpu"`` on the CPU, ``"reference"``
    where the compiled kernels do not run, ``"none"`` for an empty map."""
    if _library.fallback_reason(content.device.type) is not None:
        return "reference"
    return torch.ops.adain_cuda.kernel_path(content, bool(backward))


@contextmanager
def forced_kernel_path(path: str) -> Iterator[None]:
    """Every AdaIN call inside takes ``path`` where it can (process-wide, not thread-local)."""
    if path not in PATHS:
        raise ValueError(f"kernel path must be one of {', '.join(PATHS)}, got {path!r}")
    if not _library.loaded():  # the reference has one path
        yield
        return
    previous = torch.ops.adain_cuda.set_kernel_path(path)
    try:
        yield
    finally:
        torch.ops.adain_cuda.set_kernel_path(previous)
