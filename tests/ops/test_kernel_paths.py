"""Every CUDA kernel path (a warp, a block or a cluster per plane, the general path), forced in
turn on the same shapes, against the float64 reference; each test says which path ran."""

import pytest
import torch

import adain_cuda
from adain_cuda import reference
from adain_cuda.ops import _library
from adain_cuda.ops.kernel_paths import PATHS, forced_kernel_path, kernel_path

from helpers import CUDA, assert_as_accurate_as_pytorch, assert_one_rounding_from, features

cuda_only = pytest.mark.cuda
SHAPES = [  # (content, style)
    ((2, 8, 16, 16), (2, 8, 16, 16)),  # small planes: a warp each
    ((3, 7, 5, 9), (3, 7, 6, 6)),  # 21 planes, odd sizes: the last block's spare warps
    ((8, 64, 32, 32), (8, 64, 32, 32)),  # the largest warp planes forward
    ((1, 4, 64, 64), (1, 4, 20, 20)),  # a plane per block
    ((1, 3, 181, 199), (1, 3, 31, 17)),  # odd plane: scalar loads and stores
    ((1, 2, 270, 480), (1, 2, 64, 64)),  # beyond one block: a cluster on sm_90
    ((3, 4, 33, 33), (1, 4, 9, 9)),  # broadcast style
]


def test_cpu_path_and_bad_names():
    assert kernel_path(torch.randn(1, 2, 3, 3)) in ("cpu", "reference")
    with pytest.raises(ValueError, match="kernel path must be one of"):
        with forced_kernel_path("fastest"):
            pass
    if _library.loaded():
        with pytest.raises(ValueError, match="kernel path must be"):
            torch.ops.adain_cuda.set_kernel_path("fastest")


@cuda_only
def test_the_binary_has_cuda_kernels():
    """On a GPU machine the extension must run CUDA kernels, not fall back to the reference."""
    if not CUDA:
        pytest.skip("needs a GPU")
    assert _library.has_kernels_for("cuda"), f"no CUDA kernels in the binary: {_library.build_info()}"


@cuda_only
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}<-{s[1]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_every_path_matches_the_reference(path, shapes, dtype, poisoned_outputs):
    if not CUDA:
        pytest.skip("needs a GPU")
    content = features(shapes[0], "cuda", dtype).requires_grad_()
    style = features(shapes[1], "cuda", dtype).requires_grad_()
    weight = features(shapes[0], "cuda", torch.float64, seed=7)
    with forced_kernel_path(path):
        taken = (kernel_path(content), kernel_path(content, backward=True))
        out = adain_cuda.adain(content, style, alpha=0.9)
        grads = torch.autograd.grad((out.double() * weight).sum(), (content, style))
    print(f"{path} {shapes[0]} {dtype}: forward {taken[0]}, backward {taken[1]}")
    assert path == "auto" or set(taken) <= {path, "general"}, taken
    c64, s64 = content.detach().double().requires_grad_(), style.detach().double().requires_grad_()
    expected = reference.adain(c64, s64, alpha=0.9)
    exp_grads = torch.autograd.grad((expected * weight).sum(), (c64, s64))
    if dtype == torch.float32:
        assert (out.double() - expected).abs().max().item() <= 5e-5 * max(1.0, expected.abs().max().item())
        for g, e in zip(grads, exp_grads):
            assert (g.double() - e).abs().max().item() <= 2e-4 * max(1.0, e.abs().max().item())
        return
    c, s = content.detach().requires_grad_(), style.detach().requires_grad_()
    low = reference.adain(c, s, alpha=0.9)
    low_grads = torch.autograd.grad((low.double() * weight).sum(), (c, s))
    assert_as_accurate_as_pytorch(out, expected, low, "output")
    assert_one_rounding_from(out, reference.adain(c.detach().float(), s.detach().float(), alpha=0.9), "output")
    for name, g, e, p in zip(("content", "style"), grads, exp_grads, low_grads):
        assert_as_accurate_as_pytorch(g, e, p, f"{name} gradient")
