"""Private helpers shared by the op modules: dtypes and strides of the kernels' outputs, the
choice between the compiled kernels and the reference, and the packed statistics layout of the
fused losses (the same layout csrc/loss_plan.h describes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import _library


def stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 maps keep float64 statistics (for gradcheck); every other dtype gets float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def kernel_output_like(x: Tensor) -> Tensor:
    """An empty tensor with the strides the kernels give their output for input ``x``: NCHW and
    channels_last are kept, any other strided input gets an NCHW output."""
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        x = x.contiguous()
    return torch.empty_like(x)


def new_stats(x: Tensor, rows: int) -> Tensor:
    """An empty (rows, N, C) statistics tensor for map ``x``."""
    return x.new_empty((rows, x.shape[0], x.shape[1]), dtype=stats_dtype(x.dtype))


def use_reference(x: Tensor) -> bool:
    """True (after warning once) when the compiled kernels cannot run on ``x``'s device."""
    reason = _library.fallback_reason(x.device.type)
    if reason is not None:
        _library.warn_fallback(reason)
    return reason is not None


def packed_numel(inputs: Sequence[Tensor], targets: Sequence[Tensor]) -> int:
    """Length of the losses' packed statistics: per style layer
    ``[input mean (N*C), input std (N*C), target mean (Nt*C), target std (Nt*C)]``, a target being
    a map of the input's shape or (2, Nt, C) statistics."""
    total = 0
    for x, t in zip(inputs, targets):
        planes = x.shape[0] * x.shape[1]
        total += 2 * (planes + (planes if t.dim() == 4 else t.shape[1] * t.shape[2]))
    return total
