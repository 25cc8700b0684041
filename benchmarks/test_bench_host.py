"""Host cost per call on tiny tensors, where the kernels take no time: adain_cuda's forward and
forward+backward beside ``F.instance_norm`` (ATen's own normalisation, the floor a custom op is
measured against) and the eager reference. (1, 4, 2, 2) maps, float32, on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import adain_cuda
from adain_cuda import reference

from common import record

SHAPE = (1, 4, 2, 2)
PROVIDERS = ["adain_cuda", "instance_norm", "reference"]


def forward(provider, content, style):
    if provider == "adain_cuda":
        return adain_cuda.adain(content, style)
    if provider == "instance_norm":
        return F.instance_norm(content)
    return reference.adain(content, style)


@pytest.mark.parametrize("mode", ["forward", "forward_requires_grad", "forward_backward"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_host_cost(benchmark, provider, mode):
    benchmark.group = f"host cost {SHAPE} float32 {mode}"
    g = torch.Generator().manual_seed(0)
    content = torch.randn(SHAPE, generator=g).requires_grad_(mode != "forward")
    style = torch.randn(SHAPE, generator=g)
    if mode == "forward_backward":

        def run():
            out = forward(provider, content, style)
            return torch.autograd.grad(out.sum(), content)
    elif mode == "forward":

        def run():
            with torch.no_grad():
                return forward(provider, content, style)
    else:

        def run():
            return forward(provider, content, style)

    run()
    benchmark.pedantic(run, rounds=200, iterations=20, warmup_rounds=20)
    record(benchmark, provider=provider, mode=mode, shape=SHAPE, dtype="float32")
