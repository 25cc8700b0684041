"""Whole stylization (encode content and style, AdaIN, decode) with random weights, a 512x512
style, float32 and bfloat16 weights (no autocast), against the plain pipeline (nn.Sequential
networks in the community layout and the pure-PyTorch AdaIN), eager and under torch.compile.

  adain_cuda[_cached]          the Stylizer's transfer() with its defaults (the fast path: exact
                               rewrites and channels_last; on CUDA CUDA graphs, on the CPU the
                               Winograd 3x3 layers); _cached: the style's statistics reused (many
                               contents or video frames with one style), else encoded every call
  adain_cuda_plain_cached      the Stylizer without the rewrites (CUDA: fast, channels_last and
                               graphs off; CPU: fast off, channels_last on, the previous default)
  plain_eager / plain_compiled / plain_compiled_max_autotune   the plain pipeline eager and under
                               torch.compile (default mode, max-autotune), dynamo reset before each
  plain_compiled_cached        (CPU) torch.compile of the plain pipeline with the style's
                               statistics computed once (what a compiled user pipeline would do)
  onnxruntime_cached           (CPU) onnxruntime running the package's own ONNX export (the style
                               baked in), its CPU provider with all graph optimisations
The CPU run also measures the machine's ceiling: the dominant layer, a 256 -> 256 3x3
convolution in channels_last (test_conv_ceiling), as GFLOP/s; applied to the whole network's FLOPs
(63 GFLOP at 256x256, counted by network_gflop) it gives the best time this machine allows, and
each provider's "ceiling fraction" in the JSON is that time over its own.
Reports ms, images per second and peak memory (CUDA: the most allocated at once over the warm-up
and timed calls, including what was already held, such as the networks' weights).
"""

from __future__ import annotations

import pytest
import torch

from adain_cuda import reference
from adain_cuda._device import cpu_computes_bf16

from common import CUDA, DEVICE, SMOKE, plain_networks, random_stylizer, record, synchronized

# (batch, height, width) of the content
SIZES = [(1, 512, 512), (8, 512, 512), (1, 1080, 1920), (1, 2160, 3840)] if CUDA else [(1, 256, 256), (1, 512, 512)]
STYLE = (512, 512) if CUDA else (256, 256)
if SMOKE:
    SIZES, STYLE = [(1, 32, 48)], (32, 32)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
PROVIDERS = [
    "adain_cuda",
    "adain_cuda_cached",
    "adain_cuda_plain_cached",
    "plain_eager",
] + (["plain_compiled", "plain_compiled_max_autotune"] if CUDA else ["plain_compiled_cached", "onnxruntime_cached"])
COMPILE_MODES = {"plain_compiled": "default", "plain_compiled_max_autotune": "max-autotune"}
OPTIONS = {
    "adain_cuda_plain_cached": dict(fast=False, channels_last=False, cuda_graphs=False) if CUDA else dict(fast=False),
}


def plain_runner(dtype, compile_mode=None):
    vgg, dec = plain_networks(dtype)
    if compile_mode:
        # torch.compile caches per code object and falls back to eager after 8 recompilations
        # (silently); every configuration gets a fresh compile instead
        torch._dynamo.reset()

    def run(content, style):
        t = reference.adain(vgg(content.to(dtype)), vgg(style.to(dtype)))
        return dec(t)[..., : content.shape[-2], : content.shape[-1]]

    return torch.no_grad()(torch.compile(run, mode=compile_mode) if compile_mode else run)


def cached_plain_runner(dtype, style, content):
    """torch.compile of the plain pipeline from the content on, the style's statistics computed once."""
    vgg, dec = plain_networks(dtype)
    torch._dynamo.reset()
    with torch.no_grad():
        mean, std = reference.channel_stats(vgg(style.to(dtype)))

    def run(content):
        return dec(reference.adain_from_stats(vgg(content.to(dtype)), mean, std))[
            ..., : content.shape[-2], : content.shape[-1]
        ]

    compiled = torch.no_grad()(torch.compile(run))
    return lambda: compiled(content)


def onnxruntime_runner(precision, style, content):
    """onnxruntime (CPU provider) on the package's ONNX export with the style baked in."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    if precision != "fp32":
        pytest.skip("the ONNX export is float32")
    import tempfile

    from adain_cuda.export import export_onnx

    stylizer = random_stylizer(fast=False, channels_last=False, cuda_graphs=False)
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(
            stylizer,
            f"{folder}/m.onnx",
            style=style[0],
            style_size=0,
            example_size=tuple(content.shape[-2:]),
            dynamic=False,
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: content.numpy()}
    return lambda: session.run(None, feed)


def network_gflop(height: int, width: int) -> float:
    """Multiply-adds x 2 of the encoder (to relu4_1) and the decoder at this content size, from
    the networks' own layers: what a 'ceiling' time is computed from."""
    from adain_cuda.models.networks import build_decoder_layers, build_vgg_layers

    total, scale = 0.0, 1.0
    for layer in [*build_vgg_layers(), *build_decoder_layers()]:
        if isinstance(layer, torch.nn.MaxPool2d):
            scale /= 4
        elif isinstance(layer, torch.nn.Upsample):
            scale *= 4
        elif isinstance(layer, torch.nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * layer.in_channels * layer.out_channels * k * height * width * scale
    return total / 1e9


_CEILING: list[float] = []  # GFLOP/s of the dominant convolution, measured by test_conv_ceiling


@pytest.mark.skipif(CUDA, reason="the CPU ceiling")
def test_conv_ceiling(benchmark):
    """The dominant layer alone at a 256x256 content's relu3 size: 256 -> 256 channels, 3x3, 64x64
    map, channels_last, oneDNN; its GFLOP/s is the machine's practical limit for this network."""
    side = 8 if SMOKE else 64
    x = torch.randn(1, 256, side, side).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval().to(memory_format=torch.channels_last)
    benchmark.group = "CPU ceiling: 256->256 3x3 convolution, channels_last, fp32"
    with torch.no_grad():
        benchmark.pedantic(lambda: conv(x), rounds=10, iterations=3, warmup_rounds=2)
    if benchmark.stats is None:  # --benchmark-disable (bench-smoke): nothing was timed
        return
    gflops = 2 * 256 * 256 * 9 * side * side / 1e9 / benchmark.stats.stats.median
    _CEILING.append(gflops)
    benchmark.extra_info["gflop_per_s"] = round(gflops, 1)
    benchmark.extra_info["network_gflop_256"] = round(network_gflop(256, 256), 1)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[2]}x{s[1]}")
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_stylize(benchmark, provider, precision, size):
    batch, height, width = size
    benchmark.group = f"stylize {batch}x {width}x{height} content, {STYLE[1]}x{STYLE[0]} style, {precision}"
    g = torch.Generator(device=DEVICE).manual_seed(0)
    content = torch.rand((batch, 3, height, width), generator=g, device=DEVICE)
    style = torch.rand((1, 3, *STYLE), generator=g, device=DEVICE)
    if not CUDA and precision == "bf16" and not provider.startswith("adain_cuda") and not cpu_computes_bf16():
        # emulated bfloat16 convolutions take minutes a call here; the package computes in float32
        pytest.skip("plain bf16 on a CPU without native bfloat16 (minutes a call)")
    if provider == "plain_compiled_cached":
        run = cached_plain_runner(PRECISIONS[precision], style, content)
    elif provider == "onnxruntime_cached":
        run = onnxruntime_runner(precision, style, content)
    elif provider.startswith("plain"):
        plain = plain_runner(PRECISIONS[precision], compile_mode=COMPILE_MODES.get(provider))
        run = lambda: plain(content, style)  # noqa: E731
    else:
        stylizer = random_stylizer(precision=precision, **OPTIONS.get(provider, {}))
        stats = stylizer.encode_style(style)
        if provider.endswith("cached"):
            run = lambda: stylizer.transfer(content, [stats])  # noqa: E731
        else:
            run = lambda: stylizer.transfer(content, [stylizer.encode_style(style)])  # noqa: E731
    run = synchronized(run)
    if CUDA:  # the peak covers warm-up too: a CUDA graph's pool is allocated when it is captured
        torch.cuda.reset_peak_memory_stats()
    run()
    benchmark.pedantic(run, rounds=20 if CUDA else 5, iterations=1, warmup_rounds=2 if CUDA else 1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else float("nan")
    if not CUDA and _CEILING and benchmark.stats is not None:  # the machine's limit, measured earlier
        best_ms = network_gflop(height, width) * batch / _CEILING[-1] * 1e3
        benchmark.extra_info["ceiling_fraction"] = round(best_ms / (benchmark.stats.stats.median * 1e3), 3)
    record(
        benchmark,
        images=batch,
        provider=provider,
        precision=precision,
        batch=batch,
        content=f"{width}x{height}",
        style=f"{STYLE[1]}x{STYLE[0]}",
        peak_gib=round(peak, 2),
    )
