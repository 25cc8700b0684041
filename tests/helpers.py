"""Helpers shared by the test modules (on the path through the pytest configuration)."""

import pytest
import torch

CUDA = torch.cuda.is_available()

# Every test runs on the CPU, and on CUDA where a GPU is present (skipped, not dropped, without).
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda,
                                              pytest.mark.skipif(not CUDA, reason="needs a CUDA device")])]


def features(shape, device, dtype=torch.float32, *, seed=None, channels_last=False):
    """Fresh random feature maps with per-channel offsets and scales, never zeros."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    n, c = shape[:2]
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    scale = torch.rand(1, c, 1, 1, generator=g, dtype=torch.float64) * 2 + 0.1
    offset = torch.randn(1, c, 1, 1, generator=g, dtype=torch.float64) * 2
    x = (x * scale + offset).to(device=device, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
