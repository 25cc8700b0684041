"""MixStyle on the fused statistics against a pure-PyTorch formulation of the released code:
values and gradients (statistics detached or differentiated through), layouts, the identity
outside training, reproducibility, and the partners of each mixing mode."""

import pytest
import torch

import adain_cuda
from adain_cuda import MixStyle

from helpers import DEVICES, features


def released_formula(x, lam, partners, eps, detach):
    """The released MixStyle forward for given mixing weights and partners, in plain PyTorch."""
    mu = x.mean(dim=[2, 3], keepdim=True)
    sig = (x.var(dim=[2, 3], keepdim=True) + eps).sqrt()
    if detach:
        mu, sig = mu.detach(), sig.detach()
    normed = (x - mu) / sig
    lam = lam.view(-1, 1, 1, 1).to(x.dtype)
    mu_mix = mu * lam + mu[partners] * (1 - lam)
    sig_mix = sig * lam + sig[partners] * (1 - lam)
    return normed * sig_mix + mu_mix


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(4, 8, 6, 5), (6, 3, 16, 16), (2, 64, 9, 9)])
def test_matches_the_released_formula_with_gradients(device, detach, channels_last, shape):
    x = features(shape, device, torch.float64, seed=1, channels_last=channels_last).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    lam = torch.distributions.Beta(0.1, 0.1).sample((shape[0], 1)).double().to(device)
    partners = torch.randperm(shape[0]).to(device)
    layer = MixStyle(eps=1e-6, detach=detach)
    out = layer.mix(x, lam, partners)
    ref = released_formula(x_ref, lam, partners, 1e-6, detach)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    weight = features(shape, device, torch.float64, seed=2)
    (g,) = torch.autograd.grad((out * weight).sum(), x)
    (g_ref,) = torch.autograd.grad((ref * weight).sum(), x_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-9)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_gradcheck_in_float64():
    """Differentiated through the statistics (with detach=True the gradient leaves them out on
    purpose, as the released code does; the comparison above checks that one)."""
    x = features((3, 4, 5, 5), "cpu", torch.float64, seed=3).requires_grad_()
    lam, partners = torch.tensor([[0.3], [0.9], [0.5]], dtype=torch.float64), torch.tensor([2, 0, 1])
    layer = MixStyle(detach=False)
    assert torch.autograd.gradcheck(lambda t: layer.mix(t, lam, partners), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_keeps_its_dtype(dtype):
    x = features((4, 8, 8, 8), "cpu", dtype, seed=4)
    out = MixStyle(p=1.0).train()(x)
    assert out.dtype == dtype and out.shape == x.shape and torch.isfinite(out.float()).all()


def test_identity_outside_training_or_when_not_drawn():
    x = features((4, 8, 6, 6), "cpu", seed=5)
    assert MixStyle(p=1.0).eval()(x) is x
    assert MixStyle(p=0.0).train()(x) is x
    single = x[:1]
    assert MixStyle(p=1.0).train()(single) is single  # nothing to mix with


def test_reproducible_with_a_seed():
    x = features((8, 16, 6, 6), "cpu", seed=6)
    layer = MixStyle(p=1.0, alpha=0.3).train()
    torch.manual_seed(11)
    a = layer(x)
    torch.manual_seed(11)
    b = layer(x)
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_crossdomain_partners_come_from_the_other_half():
    layer = MixStyle(mix="crossdomain")
    for _ in range(20):
        partners = layer.partners(8)
        assert sorted(partners.tolist()) == list(range(8))
        assert all(p >= 4 for p in partners[:4].tolist()) and all(p < 4 for p in partners[4:].tolist())
    with pytest.raises(ValueError, match="two equal halves"):
        layer.partners(5)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"p": 1.5}, "probability"),
        ({"alpha": 0.0}, "positive"),
        ({"mix": "domain"}, "mix must be one of"),
    ],
)
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        MixStyle(**kwargs)


def test_torch_compile_fullgraph():
    x = features((4, 8, 6, 6), "cpu", seed=7)
    lam, partners = torch.full((4, 1), 0.4), torch.tensor([1, 0, 3, 2])
    layer = MixStyle(detach=False)
    compiled = torch.compile(lambda t: layer.mix(t, lam, partners), fullgraph=True)
    torch.testing.assert_close(compiled(x), layer.mix(x, lam, partners), rtol=1e-5, atol=1e-5)
    assert adain_cuda.MixStyle is MixStyle
