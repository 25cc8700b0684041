"""The fast networks' feature-map kernels (ops.feature_maps) against the PyTorch forms they
replace, at the shapes of a 1920x1080 frame (CUDA; a 256x256 one on the CPU), channels_last:

  pool        2x2 max pooling of the encoder's three pooled maps: adain_cuda vs the max-reduction
              of a view (the fast path's earlier form) and max_pool2d
  interleave  the decoder's three sub-pixel interleaves: adain_cuda vs the strided copy
  first/last  the 3 -> 64 and 64 -> 3 layers: adain_cuda's direct convolution (CUDA) vs the fast
              path without it (im2col GEMM / convolution + border GEMM) and the plain pad + conv2d
  winograd    (CPU) the reflection-padded 3x3 layers of 32+ channels, float32: adain_cuda's
              Winograd kernel vs the fast path without it (convolution + border GEMM) and the plain
              pad + conv2d + relu; GFLOP/s counts the direct convolution's multiply-adds
GB/s counts reading the input once and writing the output once; compare with test_copy_bandwidth.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adain_cuda.models.fast import FastOptions, ReflectConv
from adain_cuda.ops import feature_maps

from common import CUDA, DEVICE, SMOKE, kernel_time_ms, record, synchronized

H, W = (1080, 1920) if CUDA else (256, 256)
if SMOKE:
    H, W = 16, 24
DTYPE = torch.bfloat16
# the encoder's pooled maps (channels, height, width) and the decoder's upsampled ones (out
# channels, small height, small width)
POOLS = [(64, H, W), (128, H // 2, W // 2), (256, H // 4, W // 4)]
UPSAMPLES = [(256, H // 8, W // 8), (128, H // 4, W // 4), (64, H // 2, W // 2)]


def nhwc(*shape):
    g = torch.Generator(device=DEVICE).manual_seed(sum(shape))
    return torch.randn(shape, generator=g, device=DEVICE).to(DTYPE).contiguous(memory_format=torch.channels_last)


def timed(benchmark, fn, bytes_moved, dtype="bf16", **info):
    run = synchronized(fn)
    kernel_ms = kernel_time_ms(run)
    run()
    benchmark.pedantic(run, rounds=20 if CUDA else 5, iterations=5 if CUDA else 1, warmup_rounds=2)
    record(benchmark, bytes_moved=bytes_moved, kernel_ms=kernel_ms, dtype=dtype, **info)


@pytest.mark.parametrize("shape", POOLS, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("provider", ["adain_cuda", "amax_view", "max_pool2d"])
def test_pool(benchmark, provider, shape):
    c, h, w = shape
    benchmark.group = f"2x2 max pool (1, {c}, {h}, {w}) bf16 channels_last"
    x = nhwc(1, c, h, w)
    fns = {
        "adain_cuda": lambda: feature_maps.max_pool2x2(x),
        "amax_view": lambda: x.permute(0, 2, 3, 1).reshape(1, h // 2, 2, w // 2, 2, c).amax(dim=(2, 4)),
        "max_pool2d": lambda: F.max_pool2d(x, 2, 2),
    }
    timed(benchmark, fns[provider], x.numel() * x.element_size() * 5 // 4, provider=provider, shape=shape)


@pytest.mark.parametrize("shape", UPSAMPLES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("provider", ["adain_cuda", "strided_copy"])
def test_interleave(benchmark, provider, shape):
    o, h, w = shape
    benchmark.group = f"sub-pixel interleave to (1, {o}, {2 * h}, {2 * w}) bf16 channels_last"
    y = nhwc(1, 4 * o, h + 1, w + 1)

    def strided():
        sn, sc, sh, sw = y.stride()
        phases = y.as_strided((1, o, h, 2, w, 2), (sn, sc, sh, 2 * o * sc + sh, sw, o * sc + sw), y.storage_offset())
        store = y.new_empty(1, h, 2, w, 2, o)
        return store.copy_(phases.permute(0, 2, 3, 4, 5, 1))

    fn = (lambda: feature_maps.subpixel_interleave(y, o)) if provider == "adain_cuda" else strided
    timed(benchmark, fn, 2 * 4 * o * h * w * y.element_size(), provider=provider, shape=shape)


@pytest.mark.parametrize("layer", ["first", "last"])
@pytest.mark.parametrize("provider", ["adain_cuda", "fast_without_kernels", "pad_conv2d"])
def test_first_and_last_layer(benchmark, provider, layer):
    cin, cout = (3, 64) if layer == "first" else (64, 3)
    benchmark.group = f"{layer} layer {cin} -> {cout} at {W}x{H} bf16 channels_last"
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, 3).to(DEVICE)
    relu = layer == "first"
    if provider == "adain_cuda" and not CUDA:
        pytest.skip("the direct convolution runs on CUDA (its CPU form is a float64 reference)")
    options = FastOptions(layer_kernels=provider == "adain_cuda")
    fast = ReflectConv(conv, relu, options).to(DTYPE)
    x = nhwc(1, cin, H, W)
    weight, bias = conv.weight.to(DTYPE), conv.bias.to(DTYPE)

    def plain():
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, bias)
        return F.relu(y) if relu else y

    fn = plain if provider == "pad_conv2d" else (lambda: fast(x))
    with torch.no_grad():
        timed(benchmark, fn, (cin + cout) * H * W * x.element_size(), provider=provider, layer=layer)


# (in, out, height, width) of the 3x3 layers at the three resolutions of a 256x256 image
WINOGRAD_LAYERS = [(64, 64, H, W), (128, 128, H // 2, W // 2), (256, 256, H // 4, W // 4), (512, 256, H // 8, W // 8)]


@pytest.mark.skipif(CUDA, reason="the Winograd kernel serves the CPU")
@pytest.mark.parametrize("layer", WINOGRAD_LAYERS, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("provider", ["adain_cuda_winograd", "fast_without_winograd", "pad_conv2d"])
def test_winograd(benchmark, provider, layer):
    cin, cout, h, w = layer
    benchmark.group = f"3x3 layer {cin} -> {cout} at {w}x{h} float32 channels_last"
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, 3)
    fast = ReflectConv(conv, True, FastOptions(winograd=provider == "adain_cuda_winograd"))
    x = nhwc(1, cin, h, w).float()

    def plain():
        return F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), conv.weight, conv.bias))

    fn = plain if provider == "pad_conv2d" else (lambda: fast(x))
    with torch.no_grad():
        timed(benchmark, fn, (cin + cout) * h * w * 4, dtype="fp32", provider=provider, layer=layer)
    if benchmark.stats is not None:
        flops = 2 * 9 * cin * cout * h * w
        benchmark.extra_info["GFLOP_per_s"] = round(flops / benchmark.stats.stats.median / 1e9, 1)
