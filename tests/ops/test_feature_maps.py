"""The feature-map kernels of the fast networks (ops.feature_maps): 2x2 max pooling and the
sub-pixel interleave, bit-identical to max_pool2d and to the strided copy they replace."""

import pytest
import torch
import torch.nn.functional as F

from adain_cuda.ops import _library, feature_maps

from helpers import features

pytestmark = pytest.mark.skipif(not _library.loaded(), reason="needs the compiled extension")

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# (n, c, h, w): vector-wide channel runs (16 and 64 channels), runs no vector fits (1, 3, 12, 20),
# one pixel, batches
POOL_SHAPES = [(1, 64, 8, 6), (2, 16, 4, 10), (3, 3, 6, 2), (1, 1, 2, 2), (2, 12, 10, 14), (1, 20, 2, 4)]
# (n, out_channels, h, w) of the small map: the phase map is (n, 4 * out_channels, h + 1, w + 1)
INTERLEAVE_SHAPES = [(1, 64, 5, 7), (2, 16, 3, 3), (1, 3, 4, 6), (2, 1, 1, 1), (1, 12, 6, 2), (3, 8, 2, 5)]


def nhwc(shape, device, dtype, seed, offset=0):
    """A random channels_last map; ``offset`` elements into its storage (misaligned vectors)."""
    x = features(shape, device, dtype, seed=seed, channels_last=True)
    if not offset:
        return x
    n, c, h, w = shape
    store = torch.empty(x.numel() + offset, device=device, dtype=dtype)[offset:]
    moved = store.view(n, h, w, c).permute(0, 3, 1, 2)
    moved.copy_(x)
    assert moved.is_contiguous(memory_format=torch.channels_last)
    return moved


def interleave_reference(y, o):
    """The strided view the plain fast path copies (UpsampleConv): phase block 2a + b at (i + a, j + b)."""
    n, _, hp, wp = y.shape
    sn, sc, sh, sw = y.stride()
    view = y.as_strided((n, o, hp - 1, 2, wp - 1, 2), (sn, sc, sh, 2 * o * sc + sh, sw, o * sc + sw),
                        y.storage_offset())
    return view.reshape(n, o, 2 * (hp - 1), 2 * (wp - 1))


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "misaligned"])
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_max_pool_equals_max_pool2d(device, dtype, shape, offset, poisoned_outputs):
    x = nhwc(shape, device, dtype, seed=sum(shape) + offset, offset=offset)
    got = feature_maps.max_pool2x2(x)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, F.max_pool2d(x, 2, 2), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_max_pool_special_values(device, dtype):
    """NaN propagates and wins over everything (as in max_pool2d), infinities and ties pool like
    it: in every one of a window's four positions."""
    x = nhwc((1, 16, 2, 8), device, dtype, seed=3)
    specials = [float("nan"), float("inf"), -float("inf"), 0.0]
    for pos in range(4):
        for k, value in enumerate(specials):
            x[0, 4 * pos + k, pos // 2, 2 * k + pos % 2] = value
    x[0, :, 1, 6:8] = x[0, :, 0, 6:8]  # a window of ties
    got, want = feature_maps.max_pool2x2(x), F.max_pool2d(x, 2, 2)
    assert torch.isnan(want).any()
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "misaligned"])
@pytest.mark.parametrize("shape", INTERLEAVE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_interleave_equals_the_strided_copy(device, dtype, shape, offset, poisoned_outputs):
    n, o, h, w = shape
    y = nhwc((n, 4 * o, h + 1, w + 1), device, dtype, seed=sum(shape) + offset, offset=offset)
    got = feature_maps.subpixel_interleave(y, o)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.shape == (n, o, 2 * h, 2 * w)
    torch.testing.assert_close(got, interleave_reference(y, o), rtol=0, atol=0)


def test_empty_maps(device):
    x = torch.empty(0, 8, 4, 4, device=device).contiguous(memory_format=torch.channels_last)
    assert feature_maps.max_pool2x2(x).shape == (0, 8, 2, 2)
    y = torch.empty(0, 8, 3, 3, device=device).contiguous(memory_format=torch.channels_last)
    assert feature_maps.subpixel_interleave(y, 2).shape == (0, 2, 4, 4)


@pytest.mark.parametrize("make, call, message", [
    (lambda d: torch.randn(1, 4, 4, 4, device=d), feature_maps.max_pool2x2, "channels_last"),
    (lambda d: nhwc((1, 4, 3, 4), d, torch.float32, 0), feature_maps.max_pool2x2, "even"),
    (lambda d: torch.randn(4, 4, 4, device=d), feature_maps.max_pool2x2, "4-D"),
    (lambda d: torch.ones(1, 4, 4, 4, device=d, dtype=torch.int32).contiguous(memory_format=torch.channels_last),
     feature_maps.max_pool2x2, "float"),
    (lambda d: nhwc((1, 12, 3, 3), d, torch.float32, 0), lambda y: feature_maps.subpixel_interleave(y, 2),
     "4 \\* out_channels"),
    (lambda d: nhwc((1, 8, 1, 3), d, torch.float32, 0), lambda y: feature_maps.subpixel_interleave(y, 2),
     "at least 2x2"),
    (lambda d: torch.randn(1, 8, 3, 3, device=d), lambda y: feature_maps.subpixel_interleave(y, 2),
     "channels_last"),
])
def test_bad_input_names_the_problem(device, make, call, message):
    with pytest.raises(ValueError, match=message):
        call(make(device))


def test_serves_only_maps_it_can_take(device):
    x = nhwc((1, 8, 4, 4), device, torch.float32, 0)
    assert feature_maps.serves(x)
    assert not feature_maps.serves(x.contiguous())  # NCHW
    assert not feature_maps.serves(x.clone().requires_grad_())  # autograd would record it
    with torch.no_grad():
        assert feature_maps.serves(x.clone().requires_grad_())


@pytest.mark.parametrize("case", ["pool", "interleave"])
def test_opcheck(device, case):
    if case == "pool":
        torch.library.opcheck(torch.ops.adain_cuda.max_pool2x2.default, (nhwc((2, 8, 6, 4), device, torch.float32, 1),))
    else:
        torch.library.opcheck(torch.ops.adain_cuda.subpixel_interleave.default,
                              (nhwc((2, 12, 4, 5), device, torch.float32, 2), 3))


def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()

    def f(x, y):
        return feature_maps.max_pool2x2(x) * 2, feature_maps.subpixel_interleave(y, 3) + 1

    x, y = nhwc((2, 8, 6, 4), device, torch.float32, 4), nhwc((1, 12, 4, 5), device, torch.float32, 5)
    got = torch.compile(f, fullgraph=True)(x, y)
    want = f(x, y)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
