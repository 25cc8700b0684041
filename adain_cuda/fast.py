"""Exact rewrites of the style-transfer networks for inference (issue: end-to-end speed).

Each rewrite computes the same function as the plain layer stack (up to floating-point rounding):

* ``fold_input_affine``: the encoder's first 1x1 convolution is a per-pixel affine map, which
  commutes with reflection padding, so it folds into the next 3x3 convolution's weights and bias.
* ``ReflectConv``: reflection padding by 1 then a 3x3 convolution equals a zero-padded
  convolution whose one-pixel output border is recomputed from reflected inputs (two small
  convolutions); the padded copy of every activation disappears.
* ``UpsampleConv``: nearest x2 upsampling, reflection padding by 1 and a 3x3 convolution equal
  four 2x2 convolutions of the edge-replicated small map, interleaved (sub-pixel form): 16 instead
  of 36 multiply-adds per 2x2 output block, and no upsampled tensor.

On CUDA the ReLU after each convolution runs in cuDNN's epilogue (``torch.cudnn_convolution_relu``),
which saves a read and a write of every activation; elsewhere it is a separate in-place ReLU.
``UpsampleConv`` writes its output in the memory format of its input, so channels_last networks
stay channels_last.

``FastEncoder`` and ``FastDecoder`` apply them to the loaded networks; the figures are in
benchmarks/RESULTS.md (benchmarks/test_bench_stylize.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .models import Decoder, Encoder, run_blocks

__all__ = ["FastDecoder", "FastEncoder", "ReflectConv", "UpsampleConv", "conv2d", "fold_input_affine"]

# Set to False to run the ReLU as a separate op on CUDA too (for comparisons).
FUSE_RELU_ON_CUDA = True
_CUDNN_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int, relu: bool) -> Tensor:
    """A stride-1 convolution, followed by a ReLU when ``relu``; on CUDA the bias and the ReLU
    run in cuDNN's epilogue (F.conv2d adds the bias in a separate pass there)."""
    if relu and FUSE_RELU_ON_CUDA and x.is_cuda and x.dtype in _CUDNN_DTYPES and torch.backends.cudnn.enabled:
        return torch.cudnn_convolution_relu(x, weight, bias, (1, 1), (padding, padding), (1, 1), 1)
    y = F.conv2d(x, weight, bias, padding=padding)
    return F.relu_(y) if relu else y


def fold_input_affine(affine: nn.Conv2d, conv: nn.Conv2d) -> nn.Conv2d:
    """conv(reflect_pad(affine(x))) == folded(reflect_pad(x)) for a 1x1 ``affine``."""
    a = affine.weight.detach()[:, :, 0, 0].double()        # (mid, in)
    w = conv.weight.detach().double()                       # (out, mid, k, k)
    folded = nn.Conv2d(affine.in_channels, conv.out_channels, conv.kernel_size,
                       dtype=conv.weight.dtype, device=conv.weight.device)
    with torch.no_grad():
        folded.weight.copy_(torch.einsum("omhw,mi->oihw", w, a).to(conv.weight.dtype))
        bias = conv.bias.detach().double() + torch.einsum("omhw,m->o", w, affine.bias.detach().double())
        folded.bias.copy_(bias.to(conv.bias.dtype))
    return folded


class ReflectConv(nn.Module):
    """ReflectionPad2d(1) + 3x3 Conv2d (+ ReLU), computed without the padded copy.

    The zero-padded convolution is right everywhere but the one-pixel border. The first and last
    rows are then recomputed by one small convolution over the rows they see with reflection
    ([1, 0, 1] and [H-2, H-1, H-2], stacked), and the first and last columns alike: two small
    convolutions per layer instead of a padded copy of the whole activation."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.weight, self.bias, self.relu = conv.weight, conv.bias, relu

    def _conv(self, x: Tensor, padding: int = 0) -> Tensor:
        return conv2d(x, self.weight, self.bias, padding, self.relu)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h < 3 or w < 3:  # the border strips would overlap: the plain form is as cheap
            return self._conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        y = self._conv(x, 1)
        rows = torch.cat([x[..., i:i + 1, :] for i in (1, 0, 1, h - 2, h - 1, h - 2)], dim=2)
        top_bottom = self._conv(F.pad(rows, (1, 1, 0, 0), mode="reflect"))    # (n, o, 4, w): rows 0, 3
        y[..., ::h - 1, :] = top_bottom[..., ::3, :]
        cols = torch.cat([x[..., j:j + 1] for j in (1, 0, 1, w - 2, w - 1, w - 2)], dim=3)
        left_right = self._conv(F.pad(cols, (0, 0, 1, 1), mode="reflect"))    # (n, o, h, 4): cols 0, 3
        y[..., ::w - 1] = left_right[..., ::3]
        return y


class UpsampleConv(nn.Module):
    """Upsample(x2, nearest) + ReflectionPad2d(1) + 3x3 Conv2d (+ ReLU) in sub-pixel form.

    The padded upsampled map is the upsampled edge-replicated map, so output phase (a, b) of each
    2x2 block sees only a 2x2 window of the small map: its 3x3 kernel collapses to 2x2 by summing
    the taps that land on the same small-map pixel (rows: phase 0 -> [k0, k1 + k2], phase 1 ->
    [k0 + k1, k2]; columns alike). All four phases run as one convolution with 4x the channels.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        w = conv.weight.detach().double()  # (out, in, 3, 3)
        rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),   # phase 0: (out, in, 2, 3)
                torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)]   # phase 1
        kernels = []
        for r in rows:
            for b in range(2):
                c = r[..., 0], r[..., 1], r[..., 2]
                cols = (c[0], c[1] + c[2]) if b == 0 else (c[0] + c[1], c[2])
                kernels.append(torch.stack(cols, -1))                    # (out, in, 2, 2)
        self.out_channels = conv.out_channels
        self.register_buffer("weight", torch.cat(kernels).to(conv.weight.dtype))   # (4 out, in, 2, 2)
        self.register_buffer("bias", conv.bias.detach().repeat(4))
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        o = self.out_channels
        # (n, 4o, h+1, w+1); the ReLU commutes with the interleaving below, so it can run here
        y = conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias, 0, self.relu)
        y = y.view(n, 2, 2, o, h + 1, w + 1)
        # phase (a, b) of output pixel (2i + a, 2j + b) is y[a, b, :, i + a, j + b]
        if _channels_last(x):  # out is (n, h, 2, w, 2, o) in memory: an (n, o, 2h, 2w) channels_last map
            store = y.new_empty(n, h, 2, w, 2, o)
            out, image = store.permute(0, 5, 1, 2, 3, 4), store.view(n, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
        else:
            out = y.new_empty(n, o, h, 2, w, 2)
            image = out.view(n, o, 2 * h, 2 * w)
        for a in range(2):
            for b in range(2):
                out[:, :, :, a, :, b] = y[:, a, b, :, a:a + h, b:b + w]
        return image


def _channels_last(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _rewrite(layers: nn.Sequential, start: int = 0) -> nn.Sequential:
    """Walks a plain stack (ReflectionPad2d, Conv2d, ReLU, MaxPool2d, Upsample) into fast layers."""
    mods, out, i = list(layers), [], start
    while i < len(mods):
        m = mods[i]
        relu_after = lambda k: k < len(mods) and isinstance(mods[k], nn.ReLU)  # noqa: E731
        if isinstance(m, nn.Upsample) and isinstance(mods[i + 1], nn.ReflectionPad2d):
            conv = mods[i + 2]
            out.append(UpsampleConv(conv, relu_after(i + 3)))
            i += 4 if relu_after(i + 3) else 3
        elif isinstance(m, nn.ReflectionPad2d):
            conv = mods[i + 1]
            out.append(ReflectConv(conv, relu_after(i + 2)))
            i += 3 if relu_after(i + 2) else 2
        else:
            out.append(m)
            i += 1
    return nn.Sequential(*out)


class FastEncoder(nn.Module):
    """An :class:`Encoder` with the rewrites applied (same outputs, same ``layers`` API)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        net = encoder.net
        folded = fold_input_affine(net[0], net[2])
        stack = nn.Sequential(net[1], folded, *list(net)[3:])  # pad, folded conv, relu, ...
        # relu1_1, relu2_1, relu3_1, relu4_1 end after plain modules 3, 10, 17, 30 (2, 9, 16, 29 here)
        self.blocks = nn.ModuleList(_rewrite(stack[a:b]) for a, b in ((0, 3), (3, 10), (10, 17), (17, 30)))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def layers(self, x: Tensor) -> list[Tensor]:
        return run_blocks(self.blocks, x)


class FastDecoder(nn.Module):
    """A :class:`Decoder` with the rewrites applied."""

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.net = _rewrite(decoder.net)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
