"""Exact rewrites of the style-transfer networks, for inference and (with live weights) training.

Each rewrite computes the same function as the plain layer stack (up to floating-point rounding):

* ``fold_input_affine``: the encoder's first 1x1 convolution is a per-pixel affine map, which
  commutes with reflection padding, so it folds into the next 3x3 convolution's weights and bias.
* ``ReflectConv``: reflection padding by 1 then a 3x3 convolution equals a zero-padded
  convolution whose one-pixel output border is recomputed from reflected inputs (one gather of
  the border's windows and one small GEMM); the padded copy of every activation disappears.
  With 3 input channels (the first layer) and channels_last, the layer is one im2col GEMM.
* ``UpsampleConv``: nearest x2 upsampling, reflection padding by 1 and a 3x3 convolution equal
  four 2x2 convolutions of the edge-replicated small map, interleaved (sub-pixel form): 16 instead
  of 36 multiply-adds per 2x2 output block, and no upsampled tensor.
* ``MaxPool2x2``: 2x2 max pooling of an even-sized channels_last map in one pass (adain_cuda's
  kernel, or one max-reduction of a view under autograd).
* In channels_last inference, pooling, the sub-pixel interleave and (on CUDA) the first and last
  layers run as adain_cuda's kernels (:mod:`adain_cuda.ops.feature_maps`).

On CUDA the bias and ReLU after each convolution run in cuDNN's epilogue
(``torch.cudnn_convolution_relu``) or cuBLASLt's (the GEMMs), which saves a read and a write of
every activation; elsewhere the ReLU is a separate in-place op. Every layer returns its input's
memory format, so channels_last networks stay channels_last.

``FastEncoder`` and ``FastDecoder`` apply them to the loaded networks; :class:`FastOptions`
switches single rewrites off for comparisons, and ``live_weights`` derives the rewritten weights
from the parameters on every call, so that training can run through them. The proofs are in
docs/fast-path.md, the figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import feature_maps
from .networks import Decoder, Encoder, run_blocks

__all__ = [
    "FastDecoder",
    "FastEncoder",
    "FastOptions",
    "MaxPool2x2",
    "ReflectConv",
    "UpsampleConv",
    "conv2d",
    "fold_input_affine",
]

IM2COL_WIDTH = 32  # im2col columns (9 * channels, zero-padded to a GEMM-friendly width)
_CUDNN_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class FastOptions:
    """Which optional parts of the fast path run; the defaults are the measured best (each
    switch exists so that one benchmark run can compare it, benchmarks/fast_variants.py).
    Every setting computes the same function."""

    fuse_relu: bool = True  # bias and ReLU in cuDNN's / cuBLASLt's epilogue on CUDA
    im2col_first_layer: bool = True  # a channels_last 3-channel layer as one im2col GEMM
    pool_as_reduction: bool = True  # 2x2 pooling of even channels_last maps as one max-reduction
    # adain_cuda's own kernels where they serve (ops.feature_maps; channels_last, not under
    # autograd): pooling and the sub-pixel interleave in one vectorized pass each, and on CUDA the
    # first (3 -> 64) and last (64 -> 3) layers as direct convolutions
    layer_kernels: bool = True
    # On the CPU (float32, channels_last, not under autograd), the reflection-padded 3x3 layers of
    # 32+ channels as adain_cuda's Winograd F(2x2, 3x3) kernel: 4 instead of 9 multiply-adds per
    # output. Its transformed weights are kept only where it is on (the Stylizer turns it off
    # on CUDA, where cuDNN chooses its own algorithms).
    winograd: bool = True
    # Derive the rewritten weights (border taps, sub-pixel kernels) from the layers' parameters
    # on every call instead of once: they are linear maps of the parameters, so gradients reach
    # them and an optimizer step is seen by the next call (training through the fast decoder).
    live_weights: bool = False


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int, relu: bool, fuse: bool = True) -> Tensor:
    """A stride-1 convolution, followed by a ReLU when ``relu``; on CUDA with ``fuse`` the bias
    and the ReLU run in cuDNN's epilogue (F.conv2d adds the bias in a separate pass there)."""
    if relu and fuse and x.is_cuda and torch.backends.cudnn.enabled and _in_place_ok(x, weight, bias):
        x, weight, bias = _autocast(x, weight, bias)
        if x.dtype in _CUDNN_DTYPES:
            return torch.cudnn_convolution_relu(x, weight, bias, (1, 1), (padding, padding), (1, 1), 1)
    y = F.conv2d(x, weight, bias, padding=padding)
    return F.relu(y, inplace=_in_place_ok(x, weight, bias)) if relu else y


def _in_place_ok(*tensors: Tensor | None) -> bool:
    """Whether the rewrites may overwrite their own intermediate results and use the fused
    epilogues: not while autograd records them (training through the rewrites), where backward
    would need the old values and the fused ops have no derivative."""
    return not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in tensors)


def _autocast(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """The operands as autocast would cast them for a convolution or a GEMM: the fused epilogue
    ops are not on autocast's lists, so under autocast (a training step's no-grad encodes) they
    would otherwise run in float32."""
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return x, weight, bias
    dtype = torch.get_autocast_dtype(device)

    def cast(t: Tensor) -> Tensor:
        return t.to(dtype) if t.is_floating_point() else t

    return cast(x), cast(weight), None if bias is None else cast(bias)


def bias_of(conv: nn.Conv2d) -> Tensor:
    """The bias of a layer of these networks (all of them have one)."""
    if conv.bias is None:
        raise ValueError("the networks' convolutions have biases; this one has none")
    return conv.bias


def fold_input_affine(affine: nn.Conv2d, conv: nn.Conv2d) -> nn.Conv2d:
    """conv(reflect_pad(affine(x))) == folded(reflect_pad(x)) for a 1x1 ``affine``."""
    a = affine.weight.detach()[:, :, 0, 0].double()  # (mid, in)
    w = conv.weight.detach().double()  # (out, mid, k, k)
    folded = nn.Conv2d(
        affine.in_channels, conv.out_channels, conv.kernel_size[0], dtype=conv.weight.dtype, device=conv.weight.device
    )
    with torch.no_grad():
        folded.weight.copy_(torch.einsum("omhw,mi->oihw", w, a).to(conv.weight.dtype))
        bias = bias_of(conv).detach().double() + torch.einsum("omhw,m->o", w, bias_of(affine).detach().double())
        bias_of(folded).copy_(bias.to(conv.weight.dtype))
    return folded


_TAPS_CACHE: OrderedDict[tuple, tuple[Tensor, Tensor, Tensor, Tensor]] = OrderedDict()


def _border_taps_for(grid_h: int, grid_w: int, k: int, x: Tensor, reflect: bool):
    """:func:`_border_taps` for input ``x``, cached per shape (the last 64)."""
    key = (grid_h, grid_w, k, *x.shape[-2:], reflect, x.device)
    taps = _TAPS_CACHE.get(key)
    if taps is not None:
        _TAPS_CACHE.move_to_end(key)
        return taps
    taps = _border_taps(grid_h, grid_w, k, x.shape[-2], x.shape[-1], reflect, x.device)
    # Tensors made inside a CUDA graph capture get their values only when the graph runs, so they
    # must not enter the cache (GraphCache's warm-up calls normally fill it beforehand).
    if not (x.is_cuda and torch.cuda.is_current_stream_capturing()):
        _TAPS_CACHE[key] = taps
        while len(_TAPS_CACHE) > 64:
            _TAPS_CACHE.popitem(last=False)
    return taps


def _border_taps(
    grid_h: int, grid_w: int, k: int, src_h: int, src_w: int, reflect: bool, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Where the one-pixel border of a (grid_h, grid_w) output grid reads its k x k window from
    a (src_h, src_w) input whose padding by 1 is reflected (``reflect``) or edge-replicated.

    Returns the border's output rows and columns, (P,), and the input rows and columns of each
    of their k*k taps, (P, k*k) in row-major tap order. Built with device arithmetic (no
    host-to-device copy, so a first call inside a CUDA graph capture works)."""

    def index(n: int) -> Tensor:
        return torch.arange(n, device=device)

    # the grid's border: top and bottom rows whole, then the left and right columns between them
    inner = index(grid_h - 2) + 1
    rows = torch.cat(
        [
            torch.zeros(grid_w, dtype=torch.long, device=device),
            inner,
            torch.full((grid_w,), grid_h - 1, device=device),
            inner,
        ]
    )
    cols = torch.cat([index(grid_w), torch.zeros_like(inner), index(grid_w), torch.full_like(inner, grid_w - 1)])

    def source(pos: Tensor, size: int) -> Tensor:
        src = pos[:, None] + index(k)[None, :] - 1  # (P, k): the padded window, shifted back
        if reflect:  # -1 -> 1, size -> size - 2
            return torch.where(src < 0, -src, torch.where(src >= size, 2 * (size - 1) - src, src))
        return src.clamp(0, size - 1)

    src_rows, src_cols = source(rows, src_h), source(cols, src_w)
    return (
        rows,
        cols,
        (src_rows[:, :, None].expand(-1, k, k)).reshape(-1, k * k),
        (src_cols[:, None, :].expand(-1, k, k)).reshape(-1, k * k),
    )


def _fix_border(
    y: Tensor, x: Tensor, taps: Tensor, bias: Tensor | None, relu: bool, k: int, reflect: bool, fuse: bool
) -> Tensor:
    """Overwrites the one-pixel output border of ``y`` (a convolution of zero-padded ``x``) with
    the convolution of the reflected / edge-replicated padding instead: the border's k x k
    windows gathered from ``x`` (im2col of the border only) times the kernel, as one GEMM.
    ``taps`` is the kernel as (out, k*k*in) in (row, column, channel) order."""
    n, c = x.shape[:2]
    rows, cols, src_rows, src_cols = _border_taps_for(y.shape[2], y.shape[3], k, x, reflect)
    windows = x.permute(0, 2, 3, 1)[:, src_rows, src_cols]  # (n, P, k*k, c)
    windows = windows.reshape(-1, k * k * c)
    out = _linear(windows, taps, bias, relu, fuse).view(n, -1, taps.shape[0])
    if _in_place_ok(y, x, taps, bias):
        y.permute(0, 2, 3, 1)[:, rows, cols] = out
        return y
    images = torch.arange(n, device=y.device)[:, None]
    return y.permute(0, 2, 3, 1).index_put((images, rows[None], cols[None]), out).permute(0, 3, 1, 2)


def _linear(rows: Tensor, weight: Tensor, bias: Tensor | None, relu: bool, fuse: bool) -> Tensor:
    """rows @ weight.T + bias (then ReLU); on CUDA with ``fuse`` the bias and ReLU run in
    cuBLASLt's epilogue."""
    if relu and fuse and bias is not None and rows.is_cuda and _in_place_ok(rows, weight, bias):
        rows, weight, cast_bias = _autocast(rows, weight, bias)
        return torch._addmm_activation(bias if cast_bias is None else cast_bias, rows, weight.t())
    out = F.linear(rows, weight, bias)
    return F.relu(out, inplace=_in_place_ok(rows, weight, bias)) if relu else out


def _taps(weight: Tensor) -> Tensor:
    """(out, in, k, k) -> (out, k*k*in), the order in which _fix_border gathers a window
    (differentiable: detach it for a fixed copy)."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).contiguous()


def _im2col_taps(taps: Tensor) -> Tensor | None:
    """Taps zero-padded to the im2col width, or None when a window is wider."""
    return F.pad(taps, (0, IM2COL_WIDTH - taps.shape[1])) if taps.shape[1] <= IM2COL_WIDTH else None


class ReflectConv(nn.Module):
    """ReflectionPad2d(1) + 3x3 Conv2d (+ ReLU), computed without the padded copy.

    The zero-padded convolution is right everywhere but the one-pixel border, which is then
    recomputed from the reflected windows by one small GEMM (:func:`_fix_border`): a few
    kernels per layer on 2(H + W) pixels instead of a padded copy of the whole activation.
    With few input channels (the image's 3) and a channels_last input, the layer is instead one
    GEMM over its im2col matrix (``FastOptions.im2col_first_layer``), which is cheap to build from
    so few channels and runs far better than a convolution whose reduction is only 27 long."""

    taps: Tensor | None  # buffers: fixed copies of the rewritten weights (None with live weights)
    im2col_taps: Tensor | None
    winograd_weights: Tensor | None

    def __init__(self, conv: nn.Conv2d, relu: bool, options: FastOptions = FastOptions()) -> None:
        super().__init__()
        self.weight, self.bias, self.relu, self.options = conv.weight, conv.bias, relu, options
        taps = _taps(conv.weight.detach())
        self.register_buffer("taps", None if options.live_weights else taps)
        self.register_buffer("im2col_taps", None if options.live_weights else _im2col_taps(taps))
        self.few_channels = taps.shape[1] <= IM2COL_WIDTH
        winograd = options.winograd and not options.live_weights
        winograd = winograd and min(conv.in_channels, conv.out_channels) >= feature_maps.WINOGRAD_MIN_CHANNELS
        self.register_buffer("winograd_weights", feature_maps.winograd_weights(conv.weight) if winograd else None)
        # The first and last layers run as one direct CUDA kernel, which reads its weights on the
        # host: a fixed float32 CPU copy (not a buffer, so that moving the module leaves it there).
        direct = (conv.in_channels, conv.out_channels) in feature_maps.DIRECT_CONV_CHANNELS
        self.host_weights = None
        if direct and options.layer_kernels and not options.live_weights:
            self.host_weights = (conv.weight.detach().float().cpu(), bias_of(conv).detach().float().cpu())

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        fuse = self.options.fuse_relu
        if h < 2 or w < 2:  # reflection padding needs two pixels; let F.pad say so
            return conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.weight, self.bias, 0, self.relu, fuse)
        live, channels_last = self.options.live_weights, _channels_last(x)
        winograd, bias = self.winograd_weights, self.bias
        if winograd is not None and bias is not None and _in_place_ok(self.weight, bias):
            if feature_maps.serves_winograd(x, self.weight.shape[0]):
                return feature_maps.winograd_conv3x3_reflect(x, winograd, bias, self.relu)
        if self.host_weights is not None and channels_last and feature_maps.serves_direct_conv(x, self.weight.shape[0]):
            # channels_last after the first layer (the networks' layout), an NCHW image after the last
            return feature_maps.conv3x3_reflect(
                x, *self.host_weights, self.relu, channels_last_out=self.weight.shape[0] > 3
            )
        if self.few_channels and self.options.im2col_first_layer and channels_last:
            im2col_taps = _im2col_taps(_taps(self.weight)) if live else self.im2col_taps
            assert im2col_taps is not None  # few channels: the window fits the im2col width
            return self._im2col_forward(x, im2col_taps)
        y = conv2d(x, self.weight, self.bias, 1, self.relu, fuse)
        taps = _taps(self.weight) if live or self.taps is None else self.taps
        return _fix_border(y, x, taps, self.bias, self.relu, 3, reflect=True, fuse=fuse)

    def _im2col_forward(self, x: Tensor, im2col_taps: Tensor) -> Tensor:
        n, c, h, w = x.shape
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")  # c channels: a small copy
        # every pixel's 3x3 window as one (3, 3, c) row: a view of the padded map (unfold, which
        # torch.compile traces, unlike a strided view built from the storage offset)
        windows = padded.unfold(2, 3, 1).unfold(3, 3, 1).permute(0, 2, 3, 4, 5, 1)
        cols = x.new_empty(n * h * w, IM2COL_WIDTH)
        cols[:, 9 * c :].zero_()
        cols[:, : 9 * c].view(n, h, w, 3, 3, c).copy_(windows)
        y = _linear(cols, im2col_taps, self.bias, self.relu, self.options.fuse_relu)  # (n*h*w, out): NHWC
        return y.view(n, h, w, -1).permute(0, 3, 1, 2)


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2, 2, ceil_mode=True). A channels_last map of even size is pooled by one
    max-reduction over its (n, h/2, 2, w/2, 2, c) view (``FastOptions.pool_as_reduction``);
    otherwise, and for odd sizes (where ceil mode pools the last row or column alone), by
    max_pool2d."""

    def __init__(self, options: FastOptions = FastOptions()) -> None:
        super().__init__()
        self.options = options

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        even_nhwc = h % 2 == 0 and w % 2 == 0 and _channels_last(x)
        if self.options.layer_kernels and even_nhwc and feature_maps.serves(x):
            return feature_maps.max_pool2x2(x)
        if self.options.pool_as_reduction and even_nhwc:
            pixels = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2, c)  # a view: no copy
            return pixels.amax(dim=(2, 4)).permute(0, 3, 1, 2)
        return F.max_pool2d(x, 2, 2, 0, ceil_mode=True)


class UpsampleConv(nn.Module):
    """Upsample(x2, nearest) + ReflectionPad2d(1) + 3x3 Conv2d (+ ReLU) in sub-pixel form.

    The padded upsampled map is the upsampled edge-replicated map, so output phase (a, b) of each
    2x2 block sees only a 2x2 window of the small map: its 3x3 kernel collapses to 2x2 by summing
    the taps that land on the same small-map pixel (rows: phase 0 -> [k0, k1 + k2], phase 1 ->
    [k0 + k1, k2]; columns alike). All four phases run as one convolution with 4x the channels,
    over the zero-padded small map with the edge-replicated border recomputed (as ReflectConv
    does), and one copy interleaves the phases (see forward).
    """

    weight: Tensor  # buffers: the stacked phase kernels, their taps and the repeated bias
    taps: Tensor
    bias: Tensor

    def __init__(self, conv: nn.Conv2d, relu: bool, options: FastOptions = FastOptions()) -> None:
        super().__init__()
        self.options = options
        self.out_channels = conv.out_channels
        self.relu = relu
        if options.live_weights:  # the layer's own parameters, rewritten on every call
            self.conv_weight, self.conv_bias = conv.weight, bias_of(conv)
            return
        weight = _phase_kernels(conv.weight.detach().double()).to(conv.weight.dtype)
        self.register_buffer("weight", weight)
        self.register_buffer("taps", _taps(weight))
        self.register_buffer("bias", bias_of(conv).detach().repeat(4))

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        o = self.out_channels
        if self.options.live_weights:
            weight = _phase_kernels(self.conv_weight)
            taps, bias = _taps(weight), self.conv_bias.repeat(4)
        else:
            weight, taps, bias = self.weight, self.taps, self.bias
        # (n, 4o, h+1, w+1); the ReLU commutes with the interleaving below, so it can run here
        fuse = self.options.fuse_relu
        y = conv2d(x, weight, bias, 1, self.relu, fuse)
        y = _fix_border(y, x, taps, bias, self.relu, 2, reflect=False, fuse=fuse)
        # Phase (a, b) of output pixel (2i + a, 2j + b) is phase channel block 2a + b of y at
        # (i + a, j + b). In channels_last each output pixel's channels are then one contiguous
        # run of y: adain_cuda's kernel copies them; elsewhere (under autograd, NCHW) four slice
        # copies write the phases into the output's (n, h, 2, w, 2) grid (plain indexing, which
        # autograd and torch.compile trace: one strided view would need y's storage offset).
        channels_last = _channels_last(x)
        if self.options.layer_kernels and channels_last and feature_maps.serves(y):
            return feature_maps.subpixel_interleave(y, o)
        src = y.permute(0, 2, 3, 1)  # (n, h + 1, w + 1, 4o)
        if channels_last:  # stored as (n, h, 2, w, 2, o): an (n, o, 2h, 2w) channels_last map
            out = y.new_empty(n, h, 2, w, 2, o)
        else:
            out = y.new_empty(n, o, h, 2, w, 2).permute(0, 2, 3, 4, 5, 1)
        for a in (0, 1):
            for b in (0, 1):
                phase = 2 * a + b
                out[:, :, a, :, b] = src[:, a : a + h, b : b + w, phase * o : (phase + 1) * o]
        if channels_last:
            return out.view(n, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
        return out.permute(0, 5, 1, 2, 3, 4).reshape(n, o, 2 * h, 2 * w)


def _phase_kernels(w: Tensor) -> Tensor:
    """The four 2x2 sub-pixel kernels (4 out, in, 2, 2) of a 3x3 kernel w (out, in, 3, 3) after a
    nearest x2 upsampling (UpsampleConv): sums of its taps, a linear map of w."""
    rows = [
        torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),  # phase 0: (out, in, 2, 3)
        torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2),
    ]  # phase 1
    kernels = []
    for r in rows:
        for b in range(2):
            c = r[..., 0], r[..., 1], r[..., 2]
            cols = (c[0], c[1] + c[2]) if b == 0 else (c[0] + c[1], c[2])
            kernels.append(torch.stack(cols, -1))  # (out, in, 2, 2)
    return torch.cat(kernels)


def _conv(module: nn.Module) -> nn.Conv2d:
    if not isinstance(module, nn.Conv2d):
        raise TypeError(f"expected a Conv2d in the layer stack, found {type(module).__name__}")
    return module


def _channels_last(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


_POOL_2X2 = {(k, st, p, True) for k in (2, (2, 2)) for st in (2, (2, 2)) for p in (0, (0, 0))}


def _rewrite(layers: nn.Sequential, options: FastOptions, start: int = 0) -> nn.Sequential:
    """Walks a plain stack (ReflectionPad2d, Conv2d, ReLU, MaxPool2d, Upsample) into fast layers."""
    mods, i = list(layers), start
    out: list[nn.Module] = []
    while i < len(mods):
        m = mods[i]
        relu_after = lambda k: k < len(mods) and isinstance(mods[k], nn.ReLU)  # noqa: E731
        if isinstance(m, nn.Upsample) and isinstance(mods[i + 1], nn.ReflectionPad2d):
            out.append(UpsampleConv(_conv(mods[i + 2]), relu_after(i + 3), options))
            i += 4 if relu_after(i + 3) else 3
        elif isinstance(m, nn.ReflectionPad2d):
            out.append(ReflectConv(_conv(mods[i + 1]), relu_after(i + 2), options))
            i += 3 if relu_after(i + 2) else 2
        elif isinstance(m, nn.MaxPool2d) and (m.kernel_size, m.stride, m.padding, m.ceil_mode) in _POOL_2X2:
            out.append(MaxPool2x2(options))
            i += 1
        else:
            out.append(m)
            i += 1
    return nn.Sequential(*out)


class FastEncoder(nn.Module):
    """An :class:`Encoder` with the rewrites applied (same outputs, same ``layers`` API)."""

    def __init__(self, encoder: Encoder, options: FastOptions = FastOptions()) -> None:
        super().__init__()
        net = encoder.net
        folded = fold_input_affine(_conv(net[0]), _conv(net[2]))
        stack = nn.Sequential(net[1], folded, *list(net)[3:])  # pad, folded conv, relu, ...
        # relu1_1, relu2_1, relu3_1, relu4_1 end after plain modules 3, 10, 17, 30 (2, 9, 16, 29 here)
        self.blocks = nn.ModuleList(
            _rewrite(nn.Sequential(*list(stack)[a:b]), options) for a, b in ((0, 3), (3, 10), (10, 17), (17, 30))
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def layers(self, x: Tensor) -> list[Tensor]:
        return run_blocks(self.blocks, x)


class FastDecoder(nn.Module):
    """A :class:`Decoder` with the rewrites applied."""

    def __init__(self, decoder: Decoder, options: FastOptions = FastOptions()) -> None:
        super().__init__()
        self.net = _rewrite(decoder.net, options)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
