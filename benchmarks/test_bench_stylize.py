"""Whole stylization (encode content and style, AdaIN, decode): the Stylizer against the plain
eager pipeline (nn.Sequential networks in the community layout and the pure-PyTorch AdaIN), with
random weights, a 512x512 style, float32 and bfloat16 weights. ``adain_cuda_cached`` reuses the
style's statistics, as stylizing many contents (or video frames) with one style does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from adain_cuda import reference
from adain_cuda.models import Decoder, Encoder
from adain_cuda.stylizer import Stylizer
from common import CUDA, DEVICE, record, synchronized

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from community_layout import (DECODER_CONVS, VGG_CONVS, decoder_sequential,  # noqa: E402
                              random_state, vgg_sequential)

SIZES = [(512, 512), (1080, 1920)] if CUDA else [(256, 256)]
STYLE = (512, 512) if CUDA else (256, 256)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
PROVIDERS = ["adain_cuda", "adain_cuda_cached", "plain_eager"]


@pytest.fixture(scope="module")
def states():
    return random_state(VGG_CONVS, 1), random_state(DECODER_CONVS, 2)


def plain_runner(states, dtype):
    vgg_state, dec_state = states
    vgg = vgg_sequential()
    vgg.load_state_dict({k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < 31})
    dec = decoder_sequential()
    dec.load_state_dict(dec_state)
    vgg, dec = vgg.to(DEVICE, dtype).eval(), dec.to(DEVICE, dtype).eval()

    @torch.no_grad()
    def run(content, style):
        t = reference.adain(vgg(content.to(dtype)), vgg(style.to(dtype)))
        return dec(t)[..., : content.shape[-2], : content.shape[-1]]

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_stylize(benchmark, states, provider, precision, size):
    benchmark.group = f"stylize {size[1]}x{size[0]} content, {STYLE[1]}x{STYLE[0]} style, {precision}"
    g = torch.Generator(device=DEVICE).manual_seed(0)
    content = torch.rand((1, 3, *size), generator=g, device=DEVICE)
    style = torch.rand((1, 3, *STYLE), generator=g, device=DEVICE)
    if provider == "plain_eager":
        plain = plain_runner(states, PRECISIONS[precision])
        run = lambda: plain(content, style)  # noqa: E731
    else:
        enc, dec = Encoder().load_weights(states[0]), Decoder().load_weights(states[1])
        stylizer = Stylizer(enc, dec, device=DEVICE, precision=precision)
        stats = stylizer.encode_style(style)
        if provider == "adain_cuda_cached":
            run = lambda: stylizer.transfer(content, [stats])  # noqa: E731
        else:
            run = lambda: stylizer.transfer(content, [stylizer.encode_style(style)])  # noqa: E731
    run = synchronized(run)
    run()
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    benchmark.pedantic(run, rounds=20 if CUDA else 3, iterations=1, warmup_rounds=2 if CUDA else 1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else float("nan")
    record(benchmark, images=1, provider=provider, precision=precision,
           content=f"{size[1]}x{size[0]}", style=f"{STYLE[1]}x{STYLE[0]}", peak_gib=round(peak, 2))
