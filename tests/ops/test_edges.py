"""The kernels' edges that a first GPU run would hit: empty batches, NaN planes, the arguments of
the backward operators called directly, and the host rules that pick a CUDA kernel path. One
behaviour on every backend; the CPU cases run everywhere, the CUDA ones where a GPU is present."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference

from helpers import CUDA, DEVICES, features

pytest.importorskip("adain_cuda._C")


def cuda_or_skip():
    if not CUDA:
        pytest.skip("needs a CUDA device")


# ---- empty batches: empty results for the per-plane ops, a ValueError for the losses ----------

EMPTY_SHAPES = [(0, 4, 5, 5), (2, 0, 5, 5), (0, 0, 3, 3)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
@pytest.mark.parametrize("device", DEVICES)
def test_empty_batches_give_empty_results(shape, device):
    x = torch.randn(shape, device=device)
    style = torch.randn((1, shape[1], 4, 4), device=device)
    assert adain_cuda.adain(x, style).shape == shape
    mean, std = adain_cuda.channel_stats(x)
    assert mean.shape == std.shape == shape[:2]
    assert (
        adain_cuda.adain_from_stats(
            x, torch.zeros(1, shape[1], device=device), torch.ones(1, shape[1], device=device)
        ).shape
        == shape
    )
    x.requires_grad_(True)
    adain_cuda.adain(x, style).sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("call", ["style_loss", "content_loss", "style_content_loss", "op"])
def test_a_loss_over_an_empty_batch_is_refused(shape, device, call):
    x, y = torch.randn(shape, device=device), torch.randn(shape, device=device)
    with pytest.raises(ValueError, match="empty"):
        if call == "style_loss":
            adain_cuda.style_loss([x], [y])
        elif call == "content_loss":
            adain_cuda.content_loss(x, y)
        elif call == "style_content_loss":
            adain_cuda.style_content_loss([x], [y], x)
        else:  # the registered operator, as a direct caller would reach it
            torch.ops.adain_cuda.losses([x], [y], None, [1.0], 1e-5, True)


# ---- NaN planes: NaN statistics and outputs for that plane only, on every backend -----------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (2, 3, 64, 64), (2, 3, 300, 300)])
def test_nan_planes_propagate_like_the_reference(device, dtype, shape):
    x = features(shape, device, dtype, seed=1)
    x[1, 2, 0, 1] = float("nan")
    mean, std = adain_cuda.channel_stats(x)
    ref_mean, ref_std = reference.channel_stats(x.double())
    nan = torch.zeros(shape[:2], dtype=torch.bool)
    nan[1, 2] = True
    assert torch.equal(torch.isnan(std.cpu()), nan) and torch.equal(torch.isnan(ref_std.cpu()), nan)
    assert torch.equal(torch.isnan(mean.cpu()), nan)
    out = adain_cuda.adain(x, features((1, shape[1], 8, 8), device, dtype, seed=2))
    assert torch.isnan(out[1, 2]).all() and not torch.isnan(out[0]).any() and not torch.isnan(out[1, :2]).any()


@pytest.mark.parametrize("device", DEVICES)
def test_a_nan_style_plane_gives_nan_only_there(device):
    style = features((1, 3, 16, 16), device, seed=3)
    style[0, 1, 2, 2] = float("nan")
    out = adain_cuda.adain(features((2, 3, 8, 8), device, seed=4), style)
    assert torch.isnan(out[:, 1]).all() and not torch.isnan(out[:, [0, 2]]).any()


# ---- the backward operators check every argument (shared set-up: the CPU covers it) ---------


def _adain_backward_args(dtype=torch.float32):
    x = torch.randn(2, 3, 4, 4, dtype=dtype)
    sdt = torch.float64 if dtype == torch.float64 else torch.float32
    return dict(
        grad_out=torch.randn(2, 3, 4, 4, dtype=dtype),
        content=x,
        content_stats=torch.rand(2, 2, 3, dtype=sdt) + 0.5,
        style_std=torch.rand(1, 3, dtype=sdt) + 0.5,
    )


BAD_ADAIN_BACKWARD = {
    "style_std wrong channels": ("style_std", lambda a: torch.ones(1, 4), "style_std must have shape"),
    "style_std wrong batch": ("style_std", lambda a: torch.ones(3, 3), "style_std must have shape"),
    "style_std 1-D": ("style_std", lambda a: torch.ones(3), "style_std must have shape"),
    "style_std float64": ("style_std", lambda a: torch.ones(1, 3, dtype=torch.float64), "style_std must be"),
    "content_stats float16": (
        "content_stats",
        lambda a: torch.ones(2, 2, 3, dtype=torch.float16),
        "content_stats must be",
    ),
    "content_stats short": ("content_stats", lambda a: torch.ones(2, 1, 3), "content_stats must have shape"),
    "grad_out wrong shape": ("grad_out", lambda a: torch.ones(2, 3, 4, 5), "grad_out must have"),
    "grad_out integer": ("grad_out", lambda a: torch.ones(2, 3, 4, 4, dtype=torch.int32), "grad_out must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_ADAIN_BACKWARD))
def test_adain_backward_checks_every_argument(case):
    name, make, words = BAD_ADAIN_BACKWARD[case]
    args = _adain_backward_args()
    args[name] = make(args)
    with pytest.raises(ValueError, match=words):
        torch.ops.adain_cuda.adain_backward(
            args["grad_out"], args["content"], args["content_stats"], args["style_std"], 1.0, True
        )


BAD_STATS_BACKWARD = {
    "stats short": ("stats", lambda: torch.ones(2, 1, 3), "stats must have shape"),
    "stats float16": ("stats", lambda: torch.ones(2, 2, 3, dtype=torch.float16), "stats must be"),
    "grad wrong shape": ("grad_stats", lambda: torch.ones(2, 2, 4), "grad_stats must have shape"),
}


@pytest.mark.parametrize("case", sorted(BAD_STATS_BACKWARD))
def test_channel_stats_backward_checks_every_argument(case):
    name, make, words = BAD_STATS_BACKWARD[case]
    args = dict(grad_stats=torch.ones(2, 2, 3), x=torch.randn(2, 3, 4, 4), stats=torch.rand(2, 2, 3) + 0.5)
    args[name] = make()
    with pytest.raises(ValueError, match=words):
        torch.ops.adain_cuda.channel_stats_backward(args["grad_stats"], args["x"], args["stats"], True)


def _loss_forward():
    x, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    _, _, stats = torch.ops.adain_cuda.losses([x], [t], x, [1.0], 1e-5, True)
    return x, t, stats


BAD_LOSS_BACKWARD = {
    "stats too short": ("stats", lambda s: s[:-1], "stats must be the 1-D"),
    "stats 2-D": ("stats", lambda s: s.view(1, -1), "stats must be the 1-D"),
    "stats float64": ("stats", lambda s: s.double(), "stats must be Float"),
    "grad_style two values": ("grad_style", lambda s: torch.ones(2), "grad_style must be one"),
    "grad_content integer": ("grad_content", lambda s: torch.ones((), dtype=torch.int64), "grad_content must be one"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOSS_BACKWARD))
def test_losses_backward_checks_every_argument(case):
    name, make, words = BAD_LOSS_BACKWARD[case]
    x, t, stats = _loss_forward()
    args = dict(grad_style=torch.ones(()), grad_content=torch.ones(()), stats=stats)
    args[name] = make(stats)
    with pytest.raises(ValueError, match=words):
        torch.ops.adain_cuda.losses_backward(
            args["grad_style"], args["grad_content"], [x], [t], x, args["stats"], [1.0], True
        )


# Arguments on the host while the maps are on the GPU: the kernels would be handed host pointers.
@pytest.mark.cuda
@pytest.mark.parametrize(
    "op, which",
    [
        ("adain_backward", "style_std"),
        ("adain_backward", "content_stats"),
        ("adain_backward", "grad_out"),
        ("channel_stats_backward", "stats"),
        ("channel_stats_backward", "grad_stats"),
        ("losses_backward", "stats"),
        ("losses_backward", "grad_style"),
        ("losses_backward", "grad_content"),
    ],
)
def test_backward_arguments_on_another_device_are_refused(op, which):
    cuda_or_skip()
    x = torch.randn(2, 3, 4, 4, device="cuda")
    if op == "adain_backward":
        args = dict(
            grad_out=torch.randn_like(x),
            content=x,
            content_stats=torch.rand(2, 2, 3, device="cuda") + 0.5,
            style_std=torch.rand(1, 3, device="cuda") + 0.5,
        )
        args[which] = args[which].cpu()
        call = lambda: torch.ops.adain_cuda.adain_backward(  # noqa: E731
            args["grad_out"], args["content"], args["content_stats"], args["style_std"], 1.0, True
        )
    elif op == "channel_stats_backward":
        args = dict(grad_stats=torch.ones(2, 2, 3, device="cuda"), stats=torch.rand(2, 2, 3, device="cuda") + 0.5)
        args[which] = args[which].cpu()
        call = lambda: torch.ops.adain_cuda.channel_stats_backward(args["grad_stats"], x, args["stats"], True)  # noqa: E731
    else:
        _, _, stats = torch.ops.adain_cuda.losses([x], [x * 2], x, [1.0], 1e-5, True)
        args = dict(stats=stats, grad_style=torch.ones((), device="cuda"), grad_content=torch.ones((), device="cuda"))
        args[which] = args[which].cpu()
        call = lambda: torch.ops.adain_cuda.losses_backward(  # noqa: E731
            args["grad_style"], args["grad_content"], [x], [x * 2], x, args["stats"], [1.0], True
        )
    with pytest.raises(ValueError, match=f"{which} must be"):
        call()


# ---- the host rules of the CUDA path choice, tested on the CPU ------------------------------


@pytest.mark.parametrize(
    "major, ptx, binary, allowed",
    [
        (9, 90, 90, True),  # sm_90 code on an H100/H200
        (10, 90, 100, True),  # sm_90 PTX JIT-compiled on a newer GPU: clusters are in the code
        (9, 80, 90, False),  # TORCH_CUDA_ARCH_LIST="8.0+PTX" run on an H100: no cluster code
        (9, 86, 90, False),
        (8, 80, 80, False),  # an A100 schedules no clusters
        (9, 90, 0, False),  # no binary loaded for the device
    ],
)
def test_the_cluster_path_needs_code_compiled_for_clusters(major, ptx, binary, allowed):
    assert torch.ops.adain_cuda.path_rule("cluster", [major, ptx, binary]) is allowed


@pytest.mark.parametrize(
    "content, style, layout_cl, warp, inside",
    [
        ((8, 32 * 32), (8, 32 * 32), False, True, True),
        ((8, 32 * 32), (8, 128 * 128), False, True, False),  # 16x the content plane: the general reduction
        ((8, 32 * 32), (8, 64 * 64), False, False, True),  # 4x: still in the kernel
        ((8, 32 * 32), (8, 64 * 65), False, False, False),
        ((8, 16 * 16), (8, 16 * 16), True, True, False),  # channels_last style for one warp
        ((8, 64 * 64), (8, 64 * 64), True, False, True),
        ((8, 32 * 32), (1, 32 * 32), False, False, False),  # a broadcast style over 8 contents
        ((1, 32 * 32), (1, 32 * 32), False, False, True),
    ],
)
def test_large_or_strided_style_planes_leave_the_fused_kernel(content, style, layout_cl, warp, inside):
    args = [content[0], content[1], style[0], style[1], int(layout_cl), int(warp)]
    assert torch.ops.adain_cuda.path_rule("style_in_kernel", args) is inside


def test_an_unknown_rule_is_a_value_error():
    with pytest.raises(ValueError, match="unknown path rule"):
        torch.ops.adain_cuda.path_rule("nope", [1])


# ---- CUDA: the cases that decide above, run, against the reference -------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("style_shape", [(8, 64, 128, 128), (1, 64, 128, 128), "channels_last"])
def test_large_and_strided_styles_match_the_reference(style_shape):
    cuda_or_skip()
    content = features((8, 64, 32, 32), "cuda", seed=5)
    if style_shape == "channels_last":
        style = features((8, 64, 32, 32), "cuda", seed=6, channels_last=True)
    else:
        style = features(style_shape, "cuda", seed=6)
    got = adain_cuda.adain(content, style)
    exact = reference.adain(content.double(), style.double())
    assert (got.double() - exact).abs().max() < 1e-4 * exact.abs().max()


@pytest.mark.cuda
def test_a_loss_forward_is_one_kernel_launch():
    cuda_or_skip()
    x, t = torch.randn(2, 8, 16, 16, device="cuda"), torch.randn(2, 8, 16, 16, device="cuda")
    torch.ops.adain_cuda.losses([x], [t], x, [1.0], 1e-5, True)  # warm-up
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        torch.ops.adain_cuda.losses([x], [t], x, [1.0], 1e-5, True)
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and "emset" not in e.name]
    assert len(kernels) == 1, [e.name for e in kernels]
