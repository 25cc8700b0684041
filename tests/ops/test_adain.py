"""The fused AdaIN op and channel statistics against the pure-PyTorch reference."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference

from helpers import assert_as_accurate_as_pytorch, assert_one_rounding_from, features

# Absolute tolerance against a float64 reference for float64 and float32. float16 and bfloat16 are
# judged against PyTorch's own error computing the reference in that dtype (both against float64).
TOL = {torch.float64: 1e-10, torch.float32: 5e-5}
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]

SHAPES = [  # (content, style)
    ((1, 512, 64, 64), (1, 512, 64, 64)),
    ((8, 512, 32, 32), (8, 512, 32, 32)),
    ((2, 3, 1, 1), (2, 3, 1, 1)),
    ((3, 7, 5, 9), (3, 7, 5, 9)),
    ((1, 13, 1, 1000), (1, 13, 1, 1000)),
    ((2, 16, 12, 20), (2, 16, 31, 17)),  # style of another size
    ((4, 24, 16, 16), (1, 24, 9, 11)),  # one style broadcast over the batch
    ((1, 3, 200, 200), (1, 3, 64, 64)),  # plane larger than one CUDA block holds
    ((2, 5, 128, 130), (2, 5, 40, 40)),  # fused forward, general backward on CUDA
    ((2, 4, 181, 181), (1, 4, 33, 33)),  # odd plane: unvectorized paths
    ((1, 4, 270, 480), (1, 4, 64, 64)),  # relu4_1 of a 4K frame: a thread-block cluster on sm_90
    ((2, 3, 181, 199), (2, 3, 20, 20)),  # odd plane over a cluster, unvectorized
]


def check_close(out, content, style, dtype, **kw):
    expected = reference.adain(content.double(), style.double(), **kw)
    err = (out.double() - expected).abs().max().item()
    if dtype in (torch.float16, torch.bfloat16):
        assert_as_accurate_as_pytorch(out, expected, reference.adain(content, style, **kw), "adain")
        assert_one_rounding_from(out, reference.adain(content.float(), style.float(), **kw), "adain")
    else:
        assert err <= TOL[dtype], f"max error {err} above {TOL[dtype]} for {dtype}"


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}<-{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_adain_matches_reference(device, dtype, shapes, poisoned_outputs):
    content = features(shapes[0], device, dtype)
    style = features(shapes[1], device, dtype)
    out = adain_cuda.adain(content, style)
    assert out.dtype == dtype and out.shape == content.shape and out.device == content.device
    check_close(out, content, style, dtype)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("shapes", [SHAPES[3], SHAPES[6], SHAPES[7]], ids=lambda s: f"{s[0]}")
def test_alpha_and_variance_convention(device, alpha, unbiased, shapes, poisoned_outputs):
    content, style = features(shapes[0], device), features(shapes[1], device)
    out = adain_cuda.adain(content, style, alpha=alpha, unbiased=unbiased, eps=1e-3)
    check_close(out, content, style, torch.float32, alpha=alpha, unbiased=unbiased, eps=1e-3)


@pytest.mark.parametrize("shapes", [SHAPES[1], SHAPES[3], SHAPES[6], SHAPES[8]], ids=lambda s: f"{s[0]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_channels_last_in_and_out(device, dtype, shapes, poisoned_outputs):
    content = features(shapes[0], device, dtype, channels_last=True)
    style = features(shapes[1], device, dtype, channels_last=True)
    out = adain_cuda.adain(content, style, alpha=0.7)
    assert out.is_contiguous(memory_format=torch.channels_last)
    check_close(out, content, style, dtype, alpha=0.7)
    # mixed formats: channels_last content, NCHW style
    out2 = adain_cuda.adain(content, style.contiguous(), alpha=0.7)
    check_close(out2, content, style, dtype, alpha=0.7)


def test_non_contiguous_inputs(device, poisoned_outputs):
    base = features((3, 10, 17, 24), device)
    content = base[:, ::2, :, 3:21]  # strided channels, cropped width
    style = features((3, 12, 9, 8), device).transpose(2, 3)[:, 1:6]
    assert not content.is_contiguous() and not style.is_contiguous()
    out = adain_cuda.adain(content, style, alpha=0.5)
    check_close(out, content, style, torch.float32, alpha=0.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2, 8, 16, 16), (3, 7, 5, 9), (1, 4, 200, 201)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_channel_stats(device, dtype, shape, channels_last, poisoned_outputs):
    x = features(shape, device, dtype, channels_last=channels_last)
    mean, std = adain_cuda.channel_stats(x, unbiased=False)
    stats_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert mean.dtype == std.dtype == stats_dtype and mean.shape == std.shape == shape[:2]
    ref_mean, ref_std = reference.channel_stats(x.double(), unbiased=False)
    # Statistics accumulate in fp32 whatever the input: only fp32 rounding remains.
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(mean.double(), ref_mean, atol=tol, rtol=tol)
    torch.testing.assert_close(std.double(), ref_std, atol=tol, rtol=tol)


def test_adain_from_stats_matches_adain(device, poisoned_outputs):
    content, style = features((4, 32, 20, 18), device), features((1, 32, 25, 25), device)
    mean, std = adain_cuda.channel_stats(style)
    expected = adain_cuda.adain(content, style, alpha=0.6)
    for m, s in [(mean, std), (mean[0], std[0]), (mean.expand(4, -1), std.expand(4, -1))]:
        out = adain_cuda.adain_from_stats(content, m, s, alpha=0.6)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_reference_equals_common_pytorch_formulation():
    # The widely used AdaIN code: var over H*W (unbiased) + eps, sqrt; normalize; rescale.
    def common_adain(content, style, eps=1e-5):
        def calc_mean_std(feat):
            n, c = feat.shape[:2]
            var = feat.view(n, c, -1).var(dim=2) + eps
            return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)

        s_mean, s_std = calc_mean_std(style)
        c_mean, c_std = calc_mean_std(content)
        return (content - c_mean.expand(content.size())) / c_std.expand(content.size()) * s_std + s_mean

    content, style = features((2, 64, 24, 24), "cpu"), features((2, 64, 30, 30), "cpu")
    torch.testing.assert_close(reference.adain(content, style), common_adain(content, style))
    torch.testing.assert_close(adain_cuda.adain(content, style), common_adain(content, style), atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("unbiased", [True, False])
def test_single_element_and_constant_planes_are_finite(device, unbiased, poisoned_outputs):
    # A plane of one element has variance 0 under both conventions; a constant plane too.
    # The result is then alpha * mu_s + (1 - alpha) * x: finite, never NaN.
    content = features((2, 3, 1, 1), device)
    style = features((2, 3, 1, 1), device)
    out = adain_cuda.adain(content, style, alpha=0.25, unbiased=unbiased)
    expected = 0.25 * style + 0.75 * content
    torch.testing.assert_close(out, expected)
    constant = torch.full((1, 4, 6, 6), 3.0, device=device)
    out = adain_cuda.adain(constant, features((1, 4, 5, 5), device), unbiased=unbiased)
    assert torch.isfinite(out).all()
    mean, std = adain_cuda.channel_stats(content, unbiased=unbiased)
    assert torch.isfinite(std).all()
    torch.testing.assert_close(std, torch.full_like(std, 1e-5**0.5))


def test_empty_batch(device):
    content = features((0, 8, 5, 5), device)
    style = features((1, 8, 5, 5), device)
    assert adain_cuda.adain(content, style).shape == (0, 8, 5, 5)
    mean, std = adain_cuda.channel_stats(content)
    assert mean.shape == (0, 8)


def test_deterministic(device):
    content, style = features((2, 64, 70, 90), device), features((2, 64, 33, 33), device)
    torch.testing.assert_close(adain_cuda.adain(content, style), adain_cuda.adain(content, style), atol=0, rtol=0)


def test_module(device):
    layer = adain_cuda.AdaIN(eps=1e-4, unbiased=False)
    content, style = features((2, 16, 8, 8), device), features((2, 16, 8, 8), device)
    torch.testing.assert_close(
        layer(content, style, alpha=0.5),
        reference.adain(content, style, alpha=0.5, eps=1e-4, unbiased=False),
        atol=2e-5,
        rtol=2e-5,
    )
    assert "unbiased=False" in repr(layer) and not list(layer.parameters())


def test_info_describes_build():
    from adain_cuda.cli import info

    text = info.describe()
    assert "torch" in text and "adain_cuda" in text and "cpu" in text.lower()
