"""Feature-map kernels for the fast networks' inference path: 2x2 max pooling and the sub-pixel
interleave of channels_last maps (csrc/layer_setup.h), each one pass over the map with 16-byte
vectors where PyTorch's reduction and strided copy take several or move single elements.

They carry no autograd formula: :func:`serves` says whether a call can use them (kernels built
for the device, a channels_last map, nothing recording a graph); elsewhere the caller computes the
same values with PyTorch ops. Both are exact (pure data movement and max), bit-identical to
``max_pool2d`` and to the strided copy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _library

__all__ = ["max_pool2x2", "serves", "subpixel_interleave"]


def serves(x: Tensor) -> bool:
    """Whether the kernels can take ``x``: built for its device, channels_last, and not
    recorded by autograd (they have no derivative)."""
    return (x.device.type in _library.KERNEL_DEVICE_TYPES and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last)
            and not (x.requires_grad and torch.is_grad_enabled()))


def max_pool2x2(x: Tensor) -> Tensor:
    """``max_pool2d(x, 2, 2)`` of a channels_last (N, C, H, W) map with even H and W, channels_last."""
    return torch.ops.adain_cuda.max_pool2x2.default(x)


def subpixel_interleave(y: Tensor, out_channels: int) -> Tensor:
    """The (N, O, 2H, 2W) map whose pixel (2i + a, 2j + b) is channel block 2a + b of ``y``
    (N, 4 * O, H + 1, W + 1) at pixel (i + a, j + b): the four phases of a sub-pixel convolution
    interleaved. Both channels_last."""
    return torch.ops.adain_cuda.subpixel_interleave.default(y, out_channels)


def _register_fakes() -> None:
    """Output shapes and strides (channels_last), checked as the C++ set-up checks them."""

    def nhwc_empty(like: Tensor, shape: tuple[int, ...]) -> Tensor:
        return like.new_empty(shape).contiguous(memory_format=torch.channels_last)

    def check_map(x: Tensor, op: str) -> None:
        torch._check(x.dim() == 4, lambda: f"{op}: the map must be a 4-D (N, C, H, W) tensor, got {x.dim()}")
        torch._check(x.dtype.is_floating_point, lambda: f"{op}: the map must be floating point, got {x.dtype}")

    @torch.library.register_fake("adain_cuda::max_pool2x2")
    def _(x):
        check_map(x, "max_pool2x2")
        n, c, h, w = x.shape
        torch._check(h % 2 == 0 and w % 2 == 0, lambda: f"max_pool2x2: height and width must be even, got {h}x{w}")
        return nhwc_empty(x, (n, c, h // 2, w // 2))

    @torch.library.register_fake("adain_cuda::subpixel_interleave")
    def _(y, out_channels):
        check_map(y, "subpixel_interleave")
        n, c, hp, wp = y.shape
        torch._check(c == 4 * out_channels and out_channels > 0,
                     lambda: f"subpixel_interleave: the map must hold 4 * {out_channels} channels, got {c}")
        return nhwc_empty(y, (n, out_channels, 2 * (hp - 1), 2 * (wp - 1)))


if _library.loaded():
    _register_fakes()
