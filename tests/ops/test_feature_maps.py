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
    view = y.as_strided(
        (n, o, hp - 1, 2, wp - 1, 2), (sn, sc, sh, 2 * o * sc + sh, sw, o * sc + sw), y.storage_offset()
    )
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


@pytest.mark.parametrize(
    "make, call, message",
    [
        (lambda d: torch.randn(1, 4, 4, 4, device=d), feature_maps.max_pool2x2, "channels_last"),
        (lambda d: nhwc((1, 4, 3, 4), d, torch.float32, 0), feature_maps.max_pool2x2, "even"),
        (lambda d: torch.randn(4, 4, 4, device=d), feature_maps.max_pool2x2, "4-D"),
        (
            lambda d: torch.ones(1, 4, 4, 4, device=d, dtype=torch.int32).contiguous(memory_format=torch.channels_last),
            feature_maps.max_pool2x2,
            "float",
        ),
        (
            lambda d: nhwc((1, 12, 3, 3), d, torch.float32, 0),
            lambda y: feature_maps.subpixel_interleave(y, 2),
            "4 \\* out_channels",
        ),
        (
            lambda d: nhwc((1, 8, 1, 3), d, torch.float32, 0),
            lambda y: feature_maps.subpixel_interleave(y, 2),
            "at least 2x2",
        ),
        (
            lambda d: torch.randn(1, 8, 3, 3, device=d),
            lambda y: feature_maps.subpixel_interleave(y, 2),
            "channels_last",
        ),
    ],
)
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
        torch.library.opcheck(
            torch.ops.adain_cuda.subpixel_interleave.default, (nhwc((2, 12, 4, 5), device, torch.float32, 2), 3)
        )


def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()

    def f(x, y):
        return feature_maps.max_pool2x2(x) * 2, feature_maps.subpixel_interleave(y, 3) + 1

    x, y = nhwc((2, 8, 6, 4), device, torch.float32, 4), nhwc((1, 12, 4, 5), device, torch.float32, 5)
    got = torch.compile(f, fullgraph=True)(x, y)
    want = f(x, y)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def reflect_conv_reference(x, weight, bias, relu):
    y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, bias)
    return F.relu(y) if relu else y


# (in, out, h, w): the first and last layers, and (CPU only) any other
DIRECT_SHAPES = [(3, 64, 9, 13), (64, 3, 6, 5), (3, 64, 2, 2), (64, 3, 2, 7)]


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("relu, with_bias", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("shape", DIRECT_SHAPES + [(5, 7, 4, 3), (1, 1, 3, 2)], ids=str)
def test_direct_conv_cpu_float64(shape, relu, with_bias, layout, poisoned_outputs):
    cin, cout, h, w = shape
    g = torch.Generator().manual_seed(cin * cout + h)
    x = torch.randn(2, cin, h, w, generator=g, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(cout, generator=g, dtype=torch.float64) if with_bias else None
    for channels_last_out in (True, False):
        got = feature_maps.conv3x3_reflect(x, weight, bias, relu, channels_last_out)
        fmt = torch.channels_last if channels_last_out else torch.contiguous_format
        assert got.is_contiguous(memory_format=fmt)
        torch.testing.assert_close(got, reflect_conv_reference(x, weight, bias, relu), rtol=1e-12, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", DIRECT_SHAPES + [(3, 64, 67, 131), (64, 3, 45, 97)], ids=str)
def test_direct_conv_cuda_as_accurate_as_cudnn(shape, dtype, poisoned_outputs):
    """Against float64 on the CPU: float32 to float32 rounding, half types no further off than
    cuDNN's own convolution in that dtype (TF32 off)."""
    from helpers import assert_as_accurate_as_pytorch

    cin, cout, h, w = shape
    g = torch.Generator().manual_seed(cin + h * w)
    x64 = torch.rand(2, cin, h, w, generator=g, dtype=torch.float64) * 2 - 0.5
    weight = torch.randn(cout, cin, 3, 3, generator=g, dtype=torch.float64) / (3 * cin**0.5)
    bias = torch.randn(cout, generator=g, dtype=torch.float64) * 0.1
    relu = cout == 64
    x = x64.to("cuda", dtype).contiguous(memory_format=torch.channels_last)
    got = feature_maps.conv3x3_reflect(x, weight.float(), bias.float(), relu, channels_last_out=cout == 64)
    assert got.is_contiguous(memory_format=torch.channels_last if cout == 64 else torch.contiguous_format)
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        cudnn = reflect_conv_reference(x, weight.to("cuda", dtype), bias.to("cuda", dtype), relu)
    finally:
        torch.backends.cudnn.allow_tf32 = old
    # the kernel's inputs are x rounded to dtype: judge it against the exact result on those
    exact = reflect_conv_reference(x.double().cpu(), weight, bias, relu)
    if dtype == torch.float32:
        torch.testing.assert_close(got.double().cpu(), exact, rtol=1e-5, atol=1e-5)
    else:
        assert_as_accurate_as_pytorch(got.cpu(), exact, cudnn.cpu(), what=f"{shape} {dtype}")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_direct_conv_cuda_refuses_what_it_does_not_compute():
    x = torch.randn(1, 5, 4, 4, device="cuda").contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="3 -> 64 and 64 -> 3"):
        feature_maps.conv3x3_reflect(x, torch.randn(7, 5, 3, 3), None, True, False)
    with pytest.raises(ValueError, match="NCHW"):
        x = torch.randn(1, 64, 4, 4, device="cuda").contiguous(memory_format=torch.channels_last)
        feature_maps.conv3x3_reflect(x, torch.randn(3, 64, 3, 3), None, False, True)


@pytest.mark.parametrize(
    "weight, bias, size, message",
    [
        (torch.randn(4, 3, 3, 3), None, (1, 1), "at least 2x2"),
        (torch.randn(4, 2, 3, 3), None, (4, 4), "weight must be"),
        (torch.randn(4, 3, 3, 3, dtype=torch.float16), None, (4, 4), "float32 or float64 CPU"),
        (torch.randn(4, 3, 3, 3), torch.randn(5), (4, 4), "bias must be"),
    ],
)
def test_direct_conv_bad_input_names_the_problem(device, weight, bias, size, message):
    x = torch.randn(1, 3, *size, device=device)
    with pytest.raises(ValueError, match=message):
        feature_maps.conv3x3_reflect(x, weight, bias, True, False)


def test_direct_conv_opcheck():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    torch.library.opcheck(
        torch.ops.adain_cuda.conv3x3_reflect.default,
        (x, torch.randn(6, 3, 3, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64), True, True),
    )
