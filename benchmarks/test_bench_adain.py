"""AdaIN op: adain_cuda vs the pure-PyTorch reference, eager and torch.compile'd.

    pytest benchmarks/test_bench_adain.py --benchmark-only --benchmark-columns=median,iqr,ops
    pytest benchmarks/ --benchmark-only --benchmark-json=out.json   # GB/s and device in extra_info

Effective bandwidth counts the bytes an ideal kernel must move: forward reads content and style
and writes the output; backward reads grad_out, content and style and writes both gradients.
The median is a synchronized call (host included); on CUDA, ``kernel_ms`` is the device time of
back-to-back calls, ``adain_cuda:<path>`` forces one kernel path (adain_cuda.ops.kernel_paths),
and test_copy_bandwidth measures the same run's device copy rate: the ceiling to compare with.
"""

from __future__ import annotations

import pytest
import torch

import adain_cuda
from adain_cuda import reference
from adain_cuda.ops.kernel_paths import forced_kernel_path, kernel_path

from common import CUDA, DEVICE, features, kernel_time_ms, record, synchronized

if CUDA:
    SHAPES = [(1, 512, 64, 64), (8, 512, 32, 32), (1, 512, 135, 240), (1, 512, 270, 480)]
else:  # what a 2-core CPU gets through in reasonable time
    SHAPES = [(1, 512, 64, 64), (4, 256, 32, 32)]
DTYPES = [torch.float32, torch.bfloat16]
PROVIDERS = ["adain_cuda", "reference", "reference_compiled"]
if CUDA:
    PROVIDERS += ["adain_cuda:warp", "adain_cuda:block", "adain_cuda:cluster", "adain_cuda:general"]
MODES = ["forward", "backward", "forward_backward"]


def style_shape(shape):
    """The style is a 512x512 image's relu4_1 map (64x64), or the content's size if smaller."""
    n, c, h, w = shape
    return (n, c, min(h, 64), min(w, 64))


def provider_fn(provider):
    if provider == "adain_cuda":
        return adain_cuda.adain
    if provider.startswith("adain_cuda:"):

        def forced(*args, **kwargs):
            with forced_kernel_path(provider.split(":")[1]):
                return adain_cuda.adain(*args, **kwargs)

        return forced
    if provider == "reference":
        return reference.adain
    return torch.compile(reference.adain, dynamic=False)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_adain(benchmark, provider, mode, dtype, shape):
    benchmark.group = f"adain {mode} {dtype} {shape}"
    fn = provider_fn(provider)
    content = features(shape, dtype, seed=1).requires_grad_(mode != "forward")
    style = features(style_shape(shape), dtype, seed=2).requires_grad_(mode != "forward")
    grad = features(shape, dtype, seed=3)
    element = content.element_size()
    fwd_bytes = (2 * content.numel() + style.numel()) * element
    bwd_bytes = (3 * content.numel() + 2 * style.numel()) * element

    if mode == "forward":

        def run():
            with torch.no_grad():
                return fn(content, style, alpha=0.9)

        moved = fwd_bytes
    elif mode == "backward":
        out = fn(content, style, alpha=0.9)

        def run():
            return torch.autograd.grad(out, (content, style), grad, retain_graph=True)

        moved = bwd_bytes
    else:

        def run():
            return torch.autograd.grad(fn(content, style, alpha=0.9), (content, style), grad)

        moved = fwd_bytes + bwd_bytes

    kernel_ms = kernel_time_ms(run)
    run = synchronized(run)
    run()  # compile / warm up outside the timing
    benchmark.pedantic(run, rounds=30 if CUDA else 8, iterations=5 if CUDA else 1, warmup_rounds=2)
    path = provider.split(":")[1] if ":" in provider else "auto"
    with forced_kernel_path(path):
        taken = kernel_path(content, backward=mode == "backward")
    record(
        benchmark,
        bytes_moved=moved,
        kernel_ms=kernel_ms,
        provider=provider,
        mode=mode,
        dtype=dtype,
        shape=shape,
        style_shape=style_shape(shape),
        kernel_path=taken,
    )


def test_copy_bandwidth(benchmark):
    """The device's copy rate in the same run (bytes read + written): the bandwidth ceiling."""
    benchmark.group = "device copy"
    numel = (512 if CUDA else 32) * 2**20 // 4
    src = torch.randn(numel, device=DEVICE)
    dst = torch.empty_like(src)
    run = synchronized(lambda: dst.copy_(src))
    kernel_ms = kernel_time_ms(run)
    run()
    benchmark.pedantic(run, rounds=20 if CUDA else 5, iterations=5 if CUDA else 1, warmup_rounds=2)
    record(benchmark, bytes_moved=2 * src.numel() * 4, kernel_ms=kernel_ms, provider="copy")
