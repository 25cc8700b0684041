"""Training losses: fused style/content losses vs the reference, eager and torch.compile'd.

The style loss runs over the four training layers relu1_1..relu4_1 of 256x256 crops at batch 8
on CUDA (batch 2 on the CPU); the content loss over relu4_1. Bytes counted: forward reads inputs
and targets; backward reads the inputs again and writes their gradients.
"""

from __future__ import annotations

import pytest
import torch

import adain_cuda
from adain_cuda import reference

from common import CUDA, SMOKE, features, record, synchronized

BATCH = 8 if CUDA else 2
LAYERS = [(BATCH, 64, 256, 256), (BATCH, 128, 128, 128), (BATCH, 256, 64, 64), (BATCH, 512, 32, 32)]
if SMOKE:
    LAYERS = [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 4, 4)]
DTYPES = [torch.float32, torch.bfloat16]
PROVIDERS = ["adain_cuda", "reference", "reference_compiled"]


def style_fn(provider):
    fn = adain_cuda.style_loss if provider == "adain_cuda" else reference.style_loss
    return torch.compile(fn, dynamic=False) if provider == "reference_compiled" else fn


def content_fn(provider):
    fn = adain_cuda.content_loss if provider == "adain_cuda" else reference.content_loss
    return torch.compile(fn, dynamic=False) if provider == "reference_compiled" else fn


def timed(benchmark, run, moved, **info):
    run = synchronized(run)
    run()  # compile / warm up outside the timing
    benchmark.pedantic(run, rounds=30 if CUDA else 6, iterations=3 if CUDA else 1, warmup_rounds=2)
    record(benchmark, bytes_moved=moved, **info)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_style_loss(benchmark, provider, mode, dtype):
    benchmark.group = f"style loss 4 layers batch {BATCH} {mode} {dtype}"
    fn = style_fn(provider)
    inputs = [features(s, dtype, seed=i).requires_grad_(mode != "forward") for i, s in enumerate(LAYERS)]
    targets = [features(s, dtype, seed=10 + i) for i, s in enumerate(LAYERS)]
    side = sum(x.numel() for x in inputs) * inputs[0].element_size()
    if mode == "forward":

        def run():
            with torch.no_grad():
                return fn(inputs, targets)

        moved = 2 * side
    else:

        def run():
            return torch.autograd.grad(fn(inputs, targets) * 10.0, inputs)

        moved = 4 * side
    timed(benchmark, run, moved, provider=provider, mode=mode, dtype=dtype, layers=LAYERS)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_content_loss(benchmark, provider, dtype):
    benchmark.group = f"content loss relu4_1 batch {BATCH} forward_backward {dtype}"
    fn = content_fn(provider)
    x = features(LAYERS[-1], dtype, seed=1).requires_grad_()
    t = features(LAYERS[-1], dtype, seed=2)

    def run():
        return torch.autograd.grad(fn(x, t), x)

    timed(
        benchmark,
        run,
        4 * x.numel() * x.element_size(),
        provider=provider,
        mode="forward_backward",
        dtype=dtype,
        shape=LAYERS[-1],
    )
