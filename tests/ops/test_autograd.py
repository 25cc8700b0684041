"""Gradients, operator registration (opcheck) and torch.compile for the AdaIN ops."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference

from helpers import assert_as_accurate_as_pytorch, features

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
        lambda c, m, s: adain_cuda.adain_from_stats(c, m, s, alpha=0.7), (content, mean, std)
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("unbiased", [True, False])
def test_gradcheck_channel_stats(device, seed, unbiased):
    x = features((2, 3, 5, 4), device, torch.float64, seed=seed).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: adain_cuda.channel_stats(t, unbiased=unbiased), (x,))


@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 8, 20, 20), (2, 8, 16, 16)),
        ((3, 5, 130, 131), (1, 5, 9, 9)),
        ((2, 4, 128, 130), (2, 4, 10, 10)),
        ((1, 3, 270, 480), (1, 3, 32, 32)),
    ],  # a cluster per plane on sm_90
    ids=str,
)
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
    if dtype == torch.bfloat16:
        pytorch = grads(reference.adain, c0, s0)
        for name, g, e, p in zip(("content", "style"), got, expected, pytorch):
            assert_as_accurate_as_pytorch(g, e, p, f"{name} gradient")
        return
    for g, e in zip(got, expected):
        scale = e.abs().max().item()
        err = (g.double() - e).abs().max().item()
        assert err <= 2e-4 * max(scale, 1.0), f"gradient error {err} (scale {scale})"


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
    stats = torch.stack([torch.randn(2, 3, device=device), torch.rand(2, 3, device=device) + 0.5])
    grad_stats = torch.randn(2, 2, 3, device=device)
    return [
        (ops.adain.default, (c, s, 0.5, 1e-5, True)),
        (ops.adain.default, (c_cl, s, 1.0, 1e-5, False)),
        (ops.adain_from_stats.default, (c, m, sd, 0.7, 1e-5, True)),
        (ops.channel_stats.default, (c, 1e-5, True)),
        (ops.channel_stats.default, (c_cl, 1e-5, False)),
        (ops.channel_stats_backward.default, (grad_stats, c.detach(), stats, True)),
        (
            ops.adain_backward.default,
            (torch.randn(2, 3, 5, 6, device=device), c.detach(), stats, sd.detach(), 0.5, True),
        ),
    ]


@pytest.mark.parametrize("case", range(7))
def test_opcheck(device, case):
    op, args = opcheck_cases(device)[case]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_torch_compile_fullgraph_forward_backward(device, dynamic):
    """Every op in one graph, backward included; dynamic=True traces the C++ backward formulas
    with symbolic sizes (three shapes: recompiles would hide a specialization)."""
    torch._dynamo.reset()

    def step(content, style, mean, std):
        a = adain_cuda.adain(content, style, alpha=0.8)
        b = adain_cuda.adain_from_stats(content, mean, std)
        m, s = adain_cuda.channel_stats(a)
        content_loss, style_loss = adain_cuda.style_content_loss([a, b], [style_maps[0], (m, s)], b)
        return (a * 2).sum() + b.square().mean() + m.sum() + s.sum() + content_loss + style_loss

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for n, h, w in [(2, 9, 7), (3, 11, 13), (2, 6, 10)] if dynamic else [(2, 9, 7)]:
        content = features((n, 8, h, w), device).requires_grad_()
        style = features((1, 8, 6, 6), device).requires_grad_()
        style_maps = [features((n, 8, h, w), device).requires_grad_()]
        mean = torch.randn(n, 8, device=device).requires_grad_()
        std = (torch.rand(n, 8, device=device) + 0.5).requires_grad_()
        leaves = (content, style, mean, std, style_maps[0])
        loss = compiled(content, style, mean, std)
        loss.backward()
        got = [loss.detach()] + [t.grad.clone() for t in leaves]

        for t in leaves:
            t.grad = None
        loss_e = step(content, style, mean, std)
        loss_e.backward()
        expected = [loss_e.detach()] + [t.grad for t in leaves]
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


def test_no_graph_without_gradients(device):
    """Without inputs that require grad (or under no_grad) the ops record nothing."""
    content, style = features((2, 3, 4, 4), device), features((1, 3, 4, 4), device)
    assert adain_cuda.adain(content, style).grad_fn is None
    with torch.no_grad():
        assert adain_cuda.adain(content.requires_grad_(), style).grad_fn is None
        assert adain_cuda.channel_stats(content)[0].grad_fn is None
    assert adain_cuda.adain(content, style).grad_fn is not None


def test_create_graph_without_a_second_derivative_of_the_op(device):
    """create_graph=True is fine as long as the op's own backward is not differentiated again
    (e.g. a penalty on the gradient of another part of the model)."""
    content = features((1, 2, 3, 3), device, torch.float64).requires_grad_()
    weight = features((1, 2, 3, 3), device, torch.float64, seed=3).requires_grad_()
    out = adain_cuda.adain(content, features((1, 2, 3, 3), device, torch.float64, seed=4))
    (grad_w,) = torch.autograd.grad((out * weight).sum(), weight, create_graph=True)
    torch.testing.assert_close(grad_w, out.detach())
