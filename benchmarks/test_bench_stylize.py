"""Whole stylization (encode content and style, AdaIN, decode) with random weights, a 512x512
style, float32 and bfloat16 weights (no autocast), against the plain pipeline (nn.Sequential
networks in the community layout and the pure-PyTorch AdaIN), eager and under torch.compile.

  adain_cuda[_cached]          the Stylizer's transfer() with its defaults (on CUDA the fast path:
                               exact rewrites, channels_last, CUDA graphs; on the CPU the plain
                               networks); _cached: the style's statistics reused (many contents or
                               video frames with one style), else encoded every call
  adain_cuda_plain_cached      (CUDA) the Stylizer with fast, channels_last and graphs off
  adain_cuda_fast_cached       (CPU) the Stylizer with the exact rewrites on
  plain_eager / plain_compiled / plain_compiled_max_autotune   the plain pipeline eager and under
                               torch.compile (default mode, max-autotune), dynamo reset before each
Reports ms, images per second and peak memory (CUDA: the most allocated at once over the warm-up
and timed calls, including what was already held, such as the networks' weights).
"""

from __future__ import annotations

import pytest
import torch

from adain_cuda import reference

from common import CUDA, DEVICE, SMOKE, random_states, random_stylizer, record, synchronized
from community_layout import decoder_sequential, vgg_sequential

# (batch, height, width) of the content
SIZES = [(1, 512, 512), (8, 512, 512), (1, 1080, 1920), (1, 2160, 3840)] if CUDA else [(1, 256, 256)]
STYLE = (512, 512) if CUDA else (256, 256)
if SMOKE:
    SIZES, STYLE = [(1, 32, 48)], (32, 32)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
PROVIDERS = [
    "adain_cuda",
    "adain_cuda_cached",
    "adain_cuda_plain_cached" if CUDA else "adain_cuda_fast_cached",
    "plain_eager",
] + (["plain_compiled", "plain_compiled_max_autotune"] if CUDA else [])
COMPILE_MODES = {"plain_compiled": "default", "plain_compiled_max_autotune": "max-autotune"}
OPTIONS = {
    "adain_cuda_plain_cached": dict(fast=False, channels_last=False, cuda_graphs=False),
    "adain_cuda_fast_cached": dict(fast=True),
}


def plain_runner(dtype, compile_mode=None):
    vgg_state, dec_state = random_states()
    vgg = vgg_sequential()
    vgg.load_state_dict({k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < 31})
    dec = decoder_sequential()
    dec.load_state_dict(dec_state)
    vgg, dec = vgg.to(DEVICE, dtype).eval(), dec.to(DEVICE, dtype).eval()
    if compile_mode:
        # torch.compile caches per code object and falls back to eager after 8 recompilations
        # (silently); every configuration gets a fresh compile instead
        torch._dynamo.reset()

    def run(content, style):
        t = reference.adain(vgg(content.to(dtype)), vgg(style.to(dtype)))
        return dec(t)[..., : content.shape[-2], : content.shape[-1]]

    return torch.no_grad()(torch.compile(run, mode=compile_mode) if compile_mode else run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[2]}x{s[1]}")
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_stylize(benchmark, provider, precision, size):
    batch, height, width = size
    benchmark.group = f"stylize {batch}x {width}x{height} content, {STYLE[1]}x{STYLE[0]} style, {precision}"
    g = torch.Generator(device=DEVICE).manual_seed(0)
    content = torch.rand((batch, 3, height, width), generator=g, device=DEVICE)
    style = torch.rand((1, 3, *STYLE), generator=g, device=DEVICE)
    if provider.startswith("plain"):
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
    benchmark.pedantic(run, rounds=20 if CUDA else 3, iterations=1, warmup_rounds=2 if CUDA else 1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else float("nan")
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
