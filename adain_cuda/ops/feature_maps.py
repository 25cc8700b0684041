"""Feature-map kernels for the fast networks' inference path (csrc/layer_setup.h):

* 2x2 max pooling and the sub-pixel interleave of channels_last maps, each one pass over the map
  with 16-byte vectors where PyTorch's reduction and strided copy take several or move single
  elements; exact (pure data movement and max), bit-identical to ``max_pool2d`` and to the copy;
* the reflection-padded 3x3 convolution of the networks' first (3 -> 64) and last (64 -> 3)
  layers computed directly (on CUDA; the CPU form is its reference), instead of a padded copy or
  an im2col matrix around a library convolution whose reduction or output is tiny;
* on the CPU, the reflection-padded 3x3 convolutions of 32 or more channels as Winograd
  F(2x2, 3x3) (:func:`winograd_conv3x3_reflect`): 4 instead of 9 multiply-adds per output, the
  padding read through reflected indices, bias and ReLU applied as the results are stored.

They carry no autograd formula: :func:`serves` and :func:`serves_direct_conv` say whether a call
can use them (kernels built for the device, the layout they read, nothing recording a graph);
elsewhere the caller computes the same values with PyTorch ops.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _library

__all__ = [
    "DIRECT_CONV_CHANNELS",
    "conv3x3_reflect",
    "max_pool2x2",
    "serves",
    "serves_direct_conv",
    "serves_winograd",
    "subpixel_interleave",
    "winograd_conv3x3_reflect",
    "winograd_weights",
]

# (in, out) channels of the layers the CUDA direct convolution computes: the first and the last.
DIRECT_CONV_CHANNELS = ((3, 64), (64, 3))
# The fewest input and output channels for which the CPU's Winograd convolution pays.
WINOGRAD_MIN_CHANNELS = 32


def serves(x: Tensor) -> bool:
    """Whether the kernels can take ``x``: built for its device, channels_last, and not
    recorded by autograd (they have no derivative)."""
    return (
        x.device.type in _library.KERNEL_DEVICE_TYPES
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not (x.requires_grad and torch.is_grad_enabled())
    )


def serves_direct_conv(x: Tensor, out_channels: int) -> bool:
    """Whether :func:`conv3x3_reflect` runs on CUDA for ``x``: a channels_last float32 / float16 /
    bfloat16 map of at least 2x2 pixels (16-byte aligned), a layer of DIRECT_CONV_CHANNELS, not
    recorded by autograd."""
    return (
        serves(x)
        and x.is_cuda
        and x.dtype != torch.float64
        and x.shape[-2] >= 2
        and x.shape[-1] >= 2
        and (x.shape[1], out_channels) in DIRECT_CONV_CHANNELS
        and x.data_ptr() % 16 == 0
    )


def serves_winograd(x: Tensor, out_channels: int) -> bool:
    """Whether :func:`winograd_conv3x3_reflect` takes ``x``: a channels_last float32 CPU map of at
    least 2x2 pixels, 32 or more channels in and out (with fewer, the transforms cost more than
    the saved multiply-adds), not recorded by autograd."""
    return (
        serves(x)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.shape[-2] >= 2
        and x.shape[-1] >= 2
        and min(x.shape[1], out_channels) >= WINOGRAD_MIN_CHANNELS
    )


def winograd_weights(weight: Tensor) -> Tensor:
    """The Winograd F(2x2, 3x3) form of a 3x3 kernel (out, in, 3, 3): G w G^T computed in float64,
    as (16, in, out) in the weight's dtype, position 4i + j of the transformed 4x4 tile first."""
    g = torch.tensor(
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float64, device=weight.device
    )
    u = g @ weight.detach().double() @ g.T  # (out, in, 4, 4)
    out, cin = weight.shape[:2]
    return u.permute(2, 3, 1, 0).reshape(16, cin, out).to(weight.dtype).contiguous()


def winograd_conv3x3_reflect(x: Tensor, weights: Tensor, bias: Tensor, relu: bool) -> Tensor:
    """``conv2d(pad(x, 1, mode="reflect"), weight, bias)`` (then ReLU) of a channels_last float32
    CPU map, as Winograd F(2x2, 3x3) with ``weights = winograd_weights(weight)``; channels_last.
    The rounding differs from a direct convolution's (within float32's error of it); a NaN input
    reaches exactly the outputs it reaches there (the transforms' zero coefficients follow the
    3x3 windows)."""
    return torch.ops.adain_cuda.winograd_conv3x3_reflect.default(x, weights, bias, relu)


def conv3x3_reflect(x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool, channels_last_out: bool) -> Tensor:
    """``conv2d(pad(x, 1, mode="reflect"), weight, bias)`` (then ReLU) without the padded copy:
    reflected indices read the border. ``weight`` (out, in, 3, 3) and ``bias`` are float32 (or
    float64) CPU tensors whatever the device of ``x``: the CUDA kernel takes them as launch
    parameters. The output is channels_last or NCHW-contiguous as asked (on CUDA: channels_last
    for 3 -> 64, NCHW for 64 -> 3)."""
    return torch.ops.adain_cuda.conv3x3_reflect.default(x, weight, bias, relu, channels_last_out)


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
        torch._check(
            c == 4 * out_channels and out_channels > 0,
            lambda: f"subpixel_interleave: the map must hold 4 * {out_channels} channels, got {c}",
        )
        return nhwc_empty(y, (n, out_channels, 2 * (hp - 1), 2 * (wp - 1)))

    @torch.library.register_fake("adain_cuda::conv3x3_reflect")
    def _(x, weight, bias, relu, channels_last_out):
        torch._check(
            x.dim() == 4 and weight.dim() == 4 and weight.shape[1] == x.shape[1],
            lambda: f"conv3x3_reflect: weight {tuple(weight.shape)} does not fit x {tuple(x.shape)}",
        )
        n, _, h, w = x.shape
        out = x.new_empty((n, weight.shape[0], h, w))
        return out.contiguous(memory_format=torch.channels_last) if channels_last_out else out

    @torch.library.register_fake("adain_cuda::winograd_conv3x3_reflect")
    def _(x, weights, bias, relu):
        check_map(x, "winograd_conv3x3_reflect")
        torch._check(
            weights.dim() == 3 and weights.shape[0] == 16 and weights.shape[1] == x.shape[1],
            lambda: f"winograd_conv3x3_reflect: weights {tuple(weights.shape)} do not fit x {tuple(x.shape)}",
        )
        n, _, h, w = x.shape
        return nhwc_empty(x, (n, weights.shape[2], h, w))


if _library.loaded():
    _register_fakes()
