"""The CUDA cases a first run on a GPU must get through, small enough to run under
compute-sanitizer (memcheck, racecheck, synccheck; scripts/gpu_check.sh): every forced kernel
path forward and backward in float32 and bfloat16/float16, a cluster of three blocks, a plane
smaller than a cluster, a broadcast style, misaligned storage, NCHW content with a channels_last
style, the fused losses in every dtype, CUDA-graph replay and two streams against eager, NaN
planes against the CPU. The case over 2^31 elements (`wide`) is too large for the sanitizer and
runs beside it. Each case is CUDA-marked and skips without a GPU."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference
from adain_cuda.ops.kernel_paths import forced_kernel_path, kernel_path

from helpers import CUDA, features

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not CUDA, reason="needs a CUDA device")]

PATHS = ["warp", "block", "cluster", "general"]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]
# (content, style, what it covers)
CASES = {
    "warp planes": ((4, 8, 8, 8), (4, 8, 8, 8)),
    "block plane": ((1, 4, 40, 40), (1, 4, 40, 40)),
    "cluster of 3": ((1, 3, 200, 200), (1, 3, 64, 64)),
    "plane smaller than a cluster": ((1, 2, 3, 3), (1, 2, 3, 3)),
    "broadcast style": ((3, 4, 20, 20), (1, 4, 9, 9)),
}


def misaligned(shape, dtype, seed):
    """A map whose storage starts one element past a 16-byte boundary."""
    flat = torch.empty(int(torch.tensor(shape).prod()) + 1, device="cuda", dtype=dtype)
    view = flat[1:].view(shape)
    view.copy_(features(shape, "cuda", dtype, seed=seed))
    assert view.data_ptr() % 16 != 0
    return view


def tolerance(dtype):
    return {torch.float32: 5e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}[dtype]


def check_adain(content, style, path):
    content, style = content.detach().requires_grad_(), style.detach().requires_grad_()
    weight = features(content.shape, "cuda", torch.float64, seed=9)
    with forced_kernel_path(path):
        taken = kernel_path(content), kernel_path(content, backward=True)
        out = adain_cuda.adain(content, style, alpha=0.9)
        grads = torch.autograd.grad((out.double() * weight).sum(), (content, style))
    assert set(taken) <= {path, "general"}, taken
    c64, s64 = content.detach().double().requires_grad_(), style.detach().double().requires_grad_()
    exact = reference.adain(c64, s64, alpha=0.9)
    exact_grads = torch.autograd.grad((exact * weight).sum(), (c64, s64))
    tol = tolerance(content.dtype)
    assert (out.double() - exact).abs().max() <= tol * max(1.0, exact.abs().max().item())
    for g, e in zip(grads, exact_grads):
        assert torch.isfinite(g).all()
        assert (g.double() - e).abs().max() <= 20 * tol * max(1.0, e.abs().max().item())


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("path", PATHS)
def test_every_path_forward_and_backward(case, dtype, path, poisoned_outputs):
    content_shape, style_shape = CASES[case]
    check_adain(features(content_shape, "cuda", dtype, seed=1), features(style_shape, "cuda", dtype, seed=2), path)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("path", PATHS)
def test_misaligned_storage(dtype, path, poisoned_outputs):
    check_adain(misaligned((2, 4, 24, 24), dtype, 3), misaligned((2, 4, 16, 16), dtype, 4), path)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("path", PATHS)
def test_nchw_content_with_a_channels_last_style(dtype, path, poisoned_outputs):
    content = features((2, 16, 24, 24), "cuda", dtype, seed=5)
    style = features((2, 16, 32, 32), "cuda", dtype, seed=6, channels_last=True)
    check_adain(content, style, path)


def loss_inputs(dtype, seed=0):
    shapes = [(2, 8, 32, 32), (2, 16, 16, 16), (2, 32, 8, 8)]
    inputs = [features(s, "cuda", dtype, seed=seed + i).requires_grad_() for i, s in enumerate(shapes)]
    targets = [features(s, "cuda", dtype, seed=seed + 10 + i) for i, s in enumerate(shapes)]
    return inputs, targets, features(shapes[-1], "cuda", dtype, seed=seed + 20)


@pytest.mark.parametrize("dtype", [*DTYPES, torch.float64], ids=str)
def test_fused_losses_in_every_dtype(dtype):
    inputs, targets, content_target = loss_inputs(dtype)
    content, style = adain_cuda.style_content_loss(inputs, targets, content_target)
    grads = torch.autograd.grad(content + style, inputs)
    ins64 = [x.detach().double().requires_grad_() for x in inputs]
    ref_style = reference.style_loss(ins64, [t.double() for t in targets])
    ref_content = reference.content_loss(ins64[-1], content_target.double())
    ref_grads = torch.autograd.grad(ref_style + ref_content, ins64)
    tol = 1e-9 if dtype == torch.float64 else 10 * tolerance(dtype)
    assert abs(style.item() - ref_style.item()) <= tol * max(1.0, abs(ref_style.item()))
    assert abs(content.item() - ref_content.item()) <= tol * max(1.0, abs(ref_content.item()))
    for g, e in zip(grads, ref_grads):
        assert (g.double() - e).abs().max() <= 20 * tol * max(1e-6, e.abs().max().item())


def _loss_step(inputs, targets, content_target):
    content, style = adain_cuda.style_content_loss(inputs, targets, content_target)
    return [content, style, *torch.autograd.grad(content + style, inputs)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_fused_losses_replay_from_a_cuda_graph_bit_for_bit(dtype):
    inputs, targets, content_target = loss_inputs(dtype, seed=30)
    eager = _loss_step(inputs, targets, content_target)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            _loss_step(inputs, targets, content_target)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = _loss_step(inputs, targets, content_target)
    for _ in range(3):  # every replay, not only the first, equals the eager step
        graph.replay()
        torch.cuda.synchronize()
        for got, want in zip(captured, eager):
            assert torch.equal(got, want)


def test_two_streams_at_once_equal_a_serial_run():
    work = [loss_inputs(torch.float32, seed=s) for s in (40, 50)]
    serial = [[t.clone() for t in _loss_step(*w)] for w in work]
    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    results = [None, None]
    torch.cuda.synchronize()
    for i, (stream, w) in enumerate(zip(streams, work)):
        with torch.cuda.stream(stream):
            results[i] = _loss_step(*w)
            results[i].append(adain_cuda.adain(w[0][0].detach(), w[1][0]))
    torch.cuda.synchronize()
    for i, w in enumerate(work):
        for got, want in zip(results[i], serial[i]):
            assert torch.equal(got, want)
        assert torch.equal(results[i][-1], adain_cuda.adain(w[0][0].detach(), w[1][0]))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 200, 200)])
def test_nan_planes_agree_with_the_cpu(path, shape):
    x = features(shape, "cpu", torch.float32, seed=60)
    x[-1, 1, 1, 1] = float("nan")
    style = features((1, shape[1], 8, 8), "cpu", torch.float32, seed=61)
    with forced_kernel_path(path):
        got = adain_cuda.adain(x.cuda(), style.cuda()).cpu()
        mean, std = adain_cuda.channel_stats(x.cuda())
    want = adain_cuda.adain(x, style)
    want_mean, want_std = adain_cuda.channel_stats(x)
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    assert torch.equal(torch.isnan(std.cpu()), torch.isnan(want_std))
    assert torch.equal(torch.isnan(mean.cpu()), torch.isnan(want_mean))


@pytest.mark.wide
def test_over_2_to_the_31_elements():
    """Wide indices: a map of 2^31 + 2^20 half-precision elements (4 GiB), statistics and AdaIN
    checked on planes at both ends of it."""
    if torch.cuda.get_device_properties(0).total_memory < 24 * 2**30:
        pytest.skip("needs 24 GiB of GPU memory")
    n, c, h, w = 2, 1025, 1024, 1024  # 2,149,580,800 elements
    x = torch.empty((n, c, h, w), device="cuda", dtype=torch.float16)
    x.normal_()
    x[-1, -1] += 3.0
    mean, std = adain_cuda.channel_stats(x)
    for i, j in ((0, 0), (n - 1, c - 1)):
        plane = x[i, j].double()
        assert abs(mean[i, j].item() - plane.mean().item()) < 1e-3
        assert abs(std[i, j].item() - plane.std().item()) < 1e-3
    style = torch.randn((1, c, 8, 8), device="cuda", dtype=torch.float16)
    out = adain_cuda.adain(x, style)
    last = reference.adain(x[-1:, -1:].double(), style[:, -1:].double())
    assert (out[-1:, -1:].double() - last).abs().max() < 2e-2
