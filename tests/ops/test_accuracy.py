"""fp32 statistics and AdaIN outputs are no further from float64 than twice PyTorch's own fp32
computation of the same formula, on planes built to break one-pass sums."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference


def adversarial_planes():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2, 6, 48, 40, generator=g, dtype=torch.float64)
    corner = base.clone()
    corner[..., 0, 0] = 100.0  # the first element far from the mean
    outlier = base.clone()
    outlier[..., 17, 23] = 1e4  # one outlier inside the plane
    yield "offset 1e3", base + 1e3
    yield "corner 100", corner
    yield "outlier 1e4", outlier
    yield "offset 1e4, spread 1e-2", base * 1e-2 + 1e4
    yield "constant", torch.full((2, 3, 9, 7), 3.25, dtype=torch.float64)
    yield "1M elements", torch.randn(1, 2, 1000, 1000, generator=g, dtype=torch.float64) * 3 + 50


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("name, x64", list(adversarial_planes()), ids=lambda v: v if isinstance(v, str) else "")
def test_statistics_are_as_accurate_as_pytorchs(device, name, x64, channels_last):
    x = x64.float().to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    exact_mean, exact_std = reference.channel_stats(x.double())
    mean, std = adain_cuda.channel_stats(x)
    torch_mean, torch_std = reference.channel_stats(x)  # PyTorch's own fp32 computation
    scale = exact_std  # a mean near 0 has no useful relative error: measure it against the spread

    def err(a, b, s):
        return ((a.double() - b) / s).abs().max().item()

    # 2x PyTorch's error, and never less than float32's own rounding of the result
    floor = 2 * torch.finfo(torch.float32).eps * (exact_mean.abs() / scale).max().item()
    assert err(mean, exact_mean, scale) <= max(2 * err(torch_mean, exact_mean, scale), floor, 1e-7)
    assert err(std, exact_std, exact_std) <= max(2 * err(torch_std, exact_std, exact_std), 1e-7)
    style = torch.randn(1, x.shape[1], 8, 8, dtype=torch.float64, device=device) * 2 + 1
    out = adain_cuda.adain(x, style.float())
    exact = reference.adain(x.double(), style.float().double())
    ref32 = reference.adain(x, style.float())
    out_err = ((out.double() - exact).abs().max() / exact.abs().max()).item()
    ref_err = ((ref32.double() - exact).abs().max() / exact.abs().max()).item()
    assert out_err <= max(2 * ref_err, 2 * torch.finfo(torch.float32).eps)
