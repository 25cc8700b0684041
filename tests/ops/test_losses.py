"""Fused style and content losses against the pure-PyTorch reference."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference

from helpers import assert_as_accurate_as_pytorch, features

# The four training layers (relu1_1..relu4_1) of a 64 px crop instead of 256 px, batch 2.
TRAIN_LAYERS = [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 4, 4)]
ODD_LAYERS = [(3, 5, 7, 9), (3, 6, 1, 1), (3, 7, 13, 2), (3, 9, 33, 35), (3, 3, 1, 17)]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# Statistics accumulate in fp32 whatever the input dtype, so against a float64 reference on the
# same (rounded) inputs only fp32 rounding remains. Gradients are stored in the input dtype: in
# float16/bfloat16 they are judged against PyTorch's own gradients in that dtype.
GRAD_TOL = {torch.float64: 1e-9, torch.float32: 1e-4}
LOW = (torch.float16, torch.bfloat16)


def maps(shapes, device, dtype=torch.float32, channels_last=False):
    return [features(s, device, dtype, channels_last=channels_last) for s in shapes]


@pytest.mark.parametrize("layers", [TRAIN_LAYERS, ODD_LAYERS, ODD_LAYERS[:1]], ids=["train", "odd5", "one"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("unbiased", [True, False])
def test_style_loss_matches_reference(device, layers, dtype, unbiased, poisoned_outputs):
    inputs, targets = maps(layers, device, dtype), maps(layers, device, dtype)
    weights = [0.5 + i for i in range(len(layers))]
    loss = adain_cuda.style_loss(inputs, targets, unbiased=unbiased, layer_weights=weights)
    expected = reference.style_loss(
        [x.double() for x in inputs], [t.double() for t in targets], unbiased=unbiased, layer_weights=weights
    )
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32) and loss.dim() == 0
    torch.testing.assert_close(loss.double(), expected, rtol=1e-9 if dtype == torch.float64 else 2e-5, atol=0)


@pytest.mark.parametrize("layers", [TRAIN_LAYERS, ODD_LAYERS], ids=["train", "odd5"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels_last", [False, True])
def test_gradients_match_reference(device, layers, dtype, channels_last, poisoned_outputs):
    inputs = [x.requires_grad_() for x in maps(layers, device, dtype, channels_last)]
    targets = maps(layers, device, dtype, channels_last)
    content_target = features(layers[-1], device, dtype)
    weights = [1.0 + 0.25 * i for i in range(len(layers))]

    content, style = adain_cuda.style_content_loss(inputs, targets, content_target, layer_weights=weights)
    grads = torch.autograd.grad(3.0 * style + 0.7 * content, inputs)  # factors != 1 exercise grad_out

    ref_inputs = [x.detach().double().requires_grad_() for x in inputs]
    ref_targets = [t.double() for t in targets]
    ref_content = reference.content_loss(ref_inputs[-1], content_target.double())
    ref_style = reference.style_loss(ref_inputs, ref_targets, layer_weights=weights)
    expected = torch.autograd.grad(3.0 * ref_style + 0.7 * ref_content, ref_inputs)
    torch.testing.assert_close(content.double(), ref_content, rtol=2e-5, atol=0)
    torch.testing.assert_close(style.double(), ref_style, rtol=2e-5, atol=0)
    if dtype in LOW:
        low_inputs = [x.detach().clone().requires_grad_() for x in inputs]
        low_loss = 3.0 * reference.style_loss(
            low_inputs, targets, layer_weights=weights
        ) + 0.7 * reference.content_loss(low_inputs[-1], content_target)
        pytorch = torch.autograd.grad(low_loss, low_inputs)
    for index, (g, e) in enumerate(zip(grads, expected)):
        assert g.shape == e.shape and g.dtype == dtype
        if dtype in LOW:
            assert_as_accurate_as_pytorch(g, e, pytorch[index], f"layer {index} gradient")
            continue
        err = (g.double() - e).abs().max().item()
        assert err <= GRAD_TOL[dtype] * e.abs().max().item(), f"layer {index}: gradient error {err}"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("unbiased", [True, False])
def test_gradcheck(device, seed, unbiased):
    shapes = [(2, 3, 4, 5), (2, 4, 3, 3)]
    inputs = [features(s, device, torch.float64, seed=seed + i).requires_grad_() for i, s in enumerate(shapes)]
    targets = [features(s, device, torch.float64, seed=seed + 7 + i) for i, s in enumerate(shapes)]
    content_target = features(shapes[-1], device, torch.float64, seed=seed + 20)

    def fn(a, b):
        content, style = adain_cuda.style_content_loss(
            [a, b], targets, content_target, unbiased=unbiased, layer_weights=[2.0, 0.5]
        )
        return 1.5 * content + 2.5 * style

    assert torch.autograd.gradcheck(fn, tuple(inputs))


def test_gradcheck_targets_requiring_grad(device):
    x = features((2, 3, 4, 4), device, torch.float64).requires_grad_()
    t_map = features((2, 3, 4, 4), device, torch.float64, seed=3).requires_grad_()
    y = features((2, 5, 3, 3), device, torch.float64, seed=4).requires_grad_()
    mean = torch.randn(1, 5, dtype=torch.float64, device=device).requires_grad_()
    std = (torch.rand(1, 5, dtype=torch.float64, device=device) + 0.5).requires_grad_()
    ct = features((2, 5, 3, 3), device, torch.float64, seed=5).requires_grad_()
    fn = lambda a, b, c, d, e, f: sum(adain_cuda.style_content_loss([a, c], [b, (d, e)], f))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, t_map, y, mean, std, ct))


def test_precomputed_target_statistics(device):
    inputs, targets = maps(TRAIN_LAYERS, device), maps(TRAIN_LAYERS, device)
    stats = [adain_cuda.channel_stats(t) for t in targets]
    torch.testing.assert_close(
        adain_cuda.style_loss(inputs, stats), adain_cuda.style_loss(inputs, targets), rtol=1e-6, atol=0
    )
    # one style's statistics shared by the whole batch: (1, C) and (C,) both accepted
    shared = [(m[:1], s[:1]) for m, s in stats]
    flat = [(m[0], s[0]) for m, s in stats]
    expected = reference.style_loss(inputs, shared)
    torch.testing.assert_close(adain_cuda.style_loss(inputs, shared), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(adain_cuda.style_loss(inputs, flat), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_content_loss(device, dtype, poisoned_outputs):
    x = features((2, 512, 9, 7), device, dtype).requires_grad_()
    t = features((2, 512, 9, 7), device, dtype)
    loss = adain_cuda.content_loss(x, t)
    expected = torch.nn.functional.mse_loss(x.double(), t.double())
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0)
    (grad,) = torch.autograd.grad(2.0 * loss, x)
    exp_grad = 4.0 * (x.double() - t.double()) / x.numel()
    if dtype in LOW:
        (pytorch,) = torch.autograd.grad(2.0 * torch.nn.functional.mse_loss(x, t), x)
        assert_as_accurate_as_pytorch(grad, exp_grad, pytorch, "content loss gradient")
    else:
        assert (grad.double() - exp_grad).abs().max() <= GRAD_TOL[dtype] * exp_grad.abs().max()


def test_deterministic(device):
    inputs = [x.requires_grad_() for x in maps(TRAIN_LAYERS, device)]
    targets, ct = maps(TRAIN_LAYERS, device), features(TRAIN_LAYERS[-1], device)

    def run():
        content, style = adain_cuda.style_content_loss(inputs, targets, ct)
        return [content.detach(), style.detach(), *torch.autograd.grad(content + 10 * style, inputs)]

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


def test_modules(device):
    inputs, targets = maps(ODD_LAYERS[:2], device), maps(ODD_LAYERS[:2], device)
    module = adain_cuda.StyleLoss(layer_weights=[1.0, 3.0], unbiased=False)
    torch.testing.assert_close(
        module(inputs, targets), reference.style_loss(inputs, targets, layer_weights=[1.0, 3.0], unbiased=False)
    )
    assert "layer_weights=[1.0, 3.0]" in repr(module)
    torch.testing.assert_close(
        adain_cuda.ContentLoss()(inputs[0], targets[0]), torch.nn.functional.mse_loss(inputs[0], targets[0])
    )


def test_opcheck(device):
    inputs = [x.requires_grad_() for x in maps([(2, 3, 5, 4), (2, 4, 3, 3)], device)]
    targets = maps([(2, 3, 5, 4)], device) + [torch.stack([torch.randn(1, 4), torch.rand(1, 4) + 0.5]).to(device)]
    ct = features((2, 4, 3, 3), device)
    torch.library.opcheck(torch.ops.adain_cuda.losses.default, (inputs, targets, ct, [1.0, 2.0], 1e-5, True))
    torch.library.opcheck(
        torch.ops.adain_cuda.losses.default, ([inputs[0]], [], features((2, 3, 5, 4), device), [], 1e-5, True)
    )
    stats = torch.ops.adain_cuda.losses(inputs, targets, ct, [1.0, 2.0], 1e-5, True)[2]
    one = torch.ones((), device=device)
    torch.library.opcheck(
        torch.ops.adain_cuda.losses_backward.default,
        (one, one, [x.detach() for x in inputs], targets, ct, stats, [1.0, 2.0], True),
    )


def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()

    def step(a, b, targets, ct):
        content, style = adain_cuda.style_content_loss([a, b], targets, ct, layer_weights=[1.0, 2.0])
        return content + 10.0 * style + adain_cuda.content_loss(a, targets[0])

    inputs = [x.requires_grad_() for x in maps([(2, 8, 6, 6), (2, 16, 3, 3)], device)]
    targets, ct = maps([(2, 8, 6, 6), (2, 16, 3, 3)], device), features((2, 16, 3, 3), device)
    loss = torch.compile(step, fullgraph=True)(*inputs, targets, ct)
    grads = torch.autograd.grad(loss, inputs)
    loss_e = step(*inputs, targets, ct)
    grads_e = torch.autograd.grad(loss_e, inputs)
    torch.testing.assert_close(loss, loss_e)
    for g, e in zip(grads, grads_e):
        torch.testing.assert_close(g, e)


def test_double_backward_is_a_clear_error(device):
    x = features((1, 2, 3, 3), device, torch.float64).requires_grad_()
    loss = adain_cuda.style_loss([x], [features((1, 2, 3, 3), device, torch.float64)])
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        g.sum().backward()


# ------------------------------------------------------------------ bad input ----
def test_bad_inputs_name_the_layer():
    x, y = features((2, 3, 4, 4), "cpu"), features((2, 5, 2, 2), "cpu")
    with pytest.raises(ValueError, match="non-empty list"):
        adain_cuda.style_loss([], [])
    with pytest.raises(ValueError, match="one entry per input layer"):
        adain_cuda.style_loss([x, y], [x])
    with pytest.raises(ValueError, match="layer 1: target shape"):
        adain_cuda.style_loss([x, y], [x, features((2, 5, 3, 3), "cpu")])
    with pytest.raises(ValueError, match="layer 1: input is torch.float64"):
        adain_cuda.style_loss([x, y.double()], [x, y.double()])
    with pytest.raises(ValueError, match="layer 1: target is torch.float64"):
        adain_cuda.style_loss([x, y], [x, y.double()])
    with pytest.raises(ValueError, match="layer 0: target is"):
        adain_cuda.style_loss([x], [x.to("meta")])
    with pytest.raises(ValueError, match="layer_weights must have one weight per layer"):
        adain_cuda.style_loss([x, y], [x, y], layer_weights=[1.0])
    with pytest.raises(ValueError, match="layer 1 target mean must have shape"):
        adain_cuda.style_loss([x, y], [x, (torch.zeros(2, 4), torch.ones(2, 4))])
    with pytest.raises(TypeError, match="layer 0: a target must be"):
        adain_cuda.style_loss([x], ["style.png"])
    with pytest.raises(ValueError, match="content_target must match"):
        adain_cuda.style_content_loss([x, y], [x, y], features((2, 5, 3, 3), "cpu"))
    with pytest.raises(ValueError, match="input and target must match"):
        adain_cuda.content_loss(x, y)


def test_op_level_checks_name_the_layer():
    x, y = features((2, 3, 4, 4), "cpu"), features((2, 5, 2, 2), "cpu")
    with pytest.raises(ValueError, match="layer 1: target shape"):
        torch.ops.adain_cuda.losses([x, y], [x, x], None, [1.0, 1.0], 1e-5, True)
    with pytest.raises(ValueError, match="layer_weights must have one weight per layer"):
        torch.ops.adain_cuda.losses([x, y], [x, y], None, [1.0], 1e-5, True)
