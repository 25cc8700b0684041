"""Gradients, operator registration (opcheck) and torch.compile for the AdaIN ops."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference

from helpers import features

ops = torch.ops.adain_cuda


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
@pytest.mark.parametrize("unbiased", [True, False])
def test_gradcheck_adain(device, seed, alpha, unbiased):
    content = features((2, 3, 4, 5), device, torch.float64, seed=seed).requires_grad_()
    style = features((2, 3, 3, 6), device, torch.float64, seed=seed + 10).requires_grad_()
    fn = lambda c, s: adain_cuda.adain(c, s, alpha=alpha, unbiased=unbiased)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (content, style))


@pytest.mark.parametrize("seed", [0, 1])
def test_gradcheck_broadcast_style_and_channels_last(device, seed):
    content = features((3, 4, 5, 3), device, torch.float64, seed=seed, channels_last=True).requires_grad_()
    style = features((1, 4, 4, 4), device, torch.float64, seed=seed + 5, channels_last=True).requires_grad_()
    assert torch.autograd.gradcheck(lambda c, s: adain_cuda.adain(c, s, alpha=0.8), (content, style))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("stats_shape", ["NC", "1C", "C"])
def test_gradcheck_adain_from_stats(device, seed, stats_shape):
    content = features((2, 3, 4, 4), device, torch.float64, seed=seed).requires_grad_()
    n = {"NC": 2, "1C": 1, "C": None}[stats_shape]
    shape = (3,) if n is None else (n, 3)
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(shape, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    std = (torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5).to(device).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c, m, s: adain_cuda.adain_from_stats(c, m, s, alpha=0.7), (content, mean, std))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("unbiased", [True, False])
def test_gradcheck_channel_stats(device, seed, unbiased):
    x = features((2, 3, 5, 4), device, torch.float64, seed=seed).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: adain_cuda.channel_stats(t, unbiased=unbiased), (x,))


@pytest.mark.parametrize("shapes", [((2, 8, 20, 20), (2, 8, 16, 16)), ((3, 5, 130, 131), (1, 5, 9, 9)),
                                    ((2, 4, 128, 130), (2, 4, 10, 10)),
                                    ((1, 3, 270, 480), (1, 3, 32, 32))],  # a cluster per plane on sm_90
                         ids=str)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_gradients_match_reference_autograd(device, shapes, channels_last, dtype, poisoned_outputs):
    """Larger shapes than gradcheck can afford, and an incoming gradient that is not ones."""
    c0 = features(shapes[0], device, dtype, channels_last=channels_last)
    s0 = features(shapes[1], device, dtype, channels_last=channels_last)
    weight = features(shapes[0], device, torch.float64)

    def grads(fn, c, s):
        c, s = c.detach().requires_grad_(), s.detach().requires_grad_()
        loss = (fn(c, s, alpha=0.9).double() * weight).sum() * 3.0
        return torch.autograd.grad(loss, (c, s))

    got = grads(adain_cuda.adain, c0, s0)
    expected = grads(reference.adain, c0.double(), s0.double())
    tol = 2e-4 if dtype == torch.float32 else 5e-2
    for g, e in zip(got, expected):
        scale = e.abs().max().item()
        err = (g.double() - e).abs().max().item()
        assert err <= tol * max(scale, 1.0), f"gradient error {err} (scale {scale})"


def test_double_backward_is_a_clear_error(device):
    content = features((1, 2, 3, 3), device, torch.float64).requires_grad_()
    style = features((1, 2, 3, 3), device, torch.float64)
    out = adain_cuda.adain(content, style)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), content, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        grad.sum().backward()


def opcheck_cases(device):
    c = features((2, 3, 5, 6), device).requires_grad_()
    s = features((1, 3, 4, 4), device).requires_grad_()
    c_cl = features((2, 3, 5, 6), device, channels_last=True).requires_grad_()
    m = torch.randn(2, 3, device=device).requires_grad_()
    sd = (torch.rand(2, 3, device=device) + 0.5).requires_grad_()
    cm, cr = torch.randn(2, 3, device=device), torch.rand(2, 3, device=device) + 0.5
    return [
        (ops.adain.default, (c, s, 0.5, 1e-5, True)),
        (ops.adain.default, (c_cl, s, 1.0, 1e-5, False)),
        (ops.adain_from_stats.default, (c, m, sd, 0.7, 1e-5, True)),
        (ops.channel_stats.default, (c, 1e-5, True)),
        (ops.channel_stats_backward.default, (m.detach(), sd.detach(), c.detach(), cm, cr, True)),
        (ops.adain_backward.default, (torch.randn(2, 3, 5, 6, device=device), c.detach(), cm, cr,
                                      sd.detach(), 0.5, True)),
    ]


@pytest.mark.parametrize("case", range(6))
def test_opcheck(device, case):
    op, args = opcheck_cases(device)[case]
    torch.library.opcheck(op, args)


def test_torch_compile_fullgraph_forward_backward(device):
    torch._dynamo.reset()

    def step(content, style, mean, std):
        a = adain_cuda.adain(content, style, alpha=0.8)
        b = adain_cuda.adain_from_stats(content, mean, std)
        m, s = adain_cuda.channel_stats(a)
        return (a * 2).sum() + b.square().mean() + m.sum() + s.sum()

    content = features((2, 8, 9, 7), device).requires_grad_()
    style = features((1, 8, 6, 6), device).requires_grad_()
    mean = torch.randn(2, 8, device=device).requires_grad_()
    std = (torch.rand(2, 8, device=device) + 0.5).requires_grad_()
    loss = torch.compile(step, fullgraph=True)(content, style, mean, std)
    loss.backward()
    got = [loss.detach()] + [t.grad.clone() for t in (content, style, mean, std)]

    for t in (content, style, mean, std):
        t.grad = None
    loss_e = step(content, style, mean, std)
    loss_e.backward()
    expected = [loss_e.detach()] + [t.grad for t in (content, style, mean, std)]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
