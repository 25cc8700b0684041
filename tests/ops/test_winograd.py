"""The CPU's Winograd F(2x2, 3x3) convolution (ops.feature_maps.winograd_conv3x3_reflect): the
reflection-padded 3x3 layers of the fast networks, against the float64 convolution."""

import pytest
import torch
import torch.nn.functional as F

from adain_cuda.ops import _library, feature_maps

from helpers import assert_as_accurate_as_pytorch

pytestmark = pytest.mark.skipif(not _library.loaded(), reason="needs the compiled extension")

# (n, in, out, h, w): the smallest map, odd and even sides (odd ones leave a half tile), channel
# counts no vector divides, one row of tiles, more tiles than one block holds (the last block
# partial), and the networks' own layer shapes
SHAPES = [
    (1, 32, 32, 2, 2),
    (2, 32, 40, 3, 5),
    (3, 33, 37, 7, 4),
    (1, 48, 32, 2, 31),
    (2, 32, 32, 33, 35),
    (1, 64, 64, 16, 16),
    (1, 128, 64, 9, 11),
    (1, 256, 256, 8, 8),
    (1, 512, 256, 4, 6),
]


def reference(x, weight, bias, relu):
    y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, bias)
    return F.relu(y) if relu else y


def layer(shape, seed, offset=0):
    """A channels_last float32 map (``offset`` elements into its storage), a kernel scaled as a
    trained layer's, a bias."""
    n, cin, cout, h, w = shape
    g = torch.Generator().manual_seed(seed)
    store = torch.empty(n * cin * h * w + offset)[offset:]
    x = store.view(n, h, w, cin).permute(0, 3, 1, 2)
    x.copy_(torch.randn(n, cin, h, w, generator=g) + 0.5)
    weight = torch.randn(cout, cin, 3, 3, generator=g) / (3 * cin**0.5)
    bias = torch.randn(cout, generator=g) * 0.1
    return x, weight, bias


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "misaligned"])
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "linear"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_as_accurate_as_the_direct_convolution(shape, relu, offset, poisoned_outputs):
    """Against float64: no further off than PyTorch's own float32 convolution (twice its error,
    or one float32 rounding), every output written, channels_last out."""
    x, weight, bias = layer(shape, sum(shape), offset)
    got = feature_maps.winograd_conv3x3_reflect(x, feature_maps.winograd_weights(weight), bias, relu)
    assert got.shape == (shape[0], shape[2], *shape[3:]) and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert not got.isnan().any()
    exact = reference(x.double(), weight.double(), bias.double(), relu)
    assert_as_accurate_as_pytorch(got, exact, reference(x, weight, bias, relu), what=str(shape))


@pytest.mark.parametrize("where", [(0, 0), (0, 3), (2, 2), (4, 6), (3, 0)], ids=str)
@pytest.mark.parametrize("size", [(5, 7), (4, 6)], ids=str)
def test_nan_reaches_the_outputs_it_reaches_in_the_direct_convolution(size, where):
    x, weight, bias = layer((1, 32, 32, *size), 7)
    x[0, 5, where[0] % size[0], where[1] % size[1]] = float("nan")
    got = feature_maps.winograd_conv3x3_reflect(x, feature_maps.winograd_weights(weight), bias, False)
    want = reference(x, weight, bias, False)
    assert torch.equal(got.isnan(), want.isnan())
    torch.testing.assert_close(got.nan_to_num(), want.nan_to_num(), rtol=1e-4, atol=1e-4)


def test_relu_keeps_nan_as_the_network_does():
    x, weight, bias = layer((1, 32, 32, 4, 4), 8)
    x[0, :, 1, 1] = float("nan")
    got = feature_maps.winograd_conv3x3_reflect(x, feature_maps.winograd_weights(weight), bias, True)
    assert torch.equal(got.isnan(), reference(x, weight, bias, True).isnan())


def test_empty_batch():
    x, weight, bias = layer((0, 32, 32, 4, 4), 9)
    got = feature_maps.winograd_conv3x3_reflect(x, feature_maps.winograd_weights(weight), bias, True)
    assert got.shape == (0, 32, 4, 4)


def test_weights_are_the_transformed_kernel():
    """G w G^T in float64, laid out (16, in, out) with tile position 4i + j first."""
    w = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    u = feature_maps.winograd_weights(w)
    g = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float64)
    for o in range(5):
        for c in range(3):
            tile = g @ w[o, c] @ g.T
            torch.testing.assert_close(u[:, c, o], tile.reshape(16), rtol=0, atol=0)


def good_args():
    x, weight, bias = layer((1, 32, 16, 4, 4), 10)
    return x, feature_maps.winograd_weights(weight), bias


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, u, b: (x.contiguous(), u, b), "channels_last"),
        (lambda x, u, b: (x.double(), u, b), "must be float32"),
        (lambda x, u, b: (x[:, :, :1], u, b), "at least 2x2"),
        (lambda x, u, b: (x[0], u, b), "4-D"),
        (lambda x, u, b: (x, u[:, :16], b), r"weights must be the transformed kernel \(16, 32, out\)"),
        (lambda x, u, b: (x, u[:9], b), r"weights must be the transformed kernel"),
        (lambda x, u, b: (x, u.double(), b), "weights must be float32"),
        (lambda x, u, b: (x, u, b[:3]), r"bias must be a float32 \(16,\)"),
        (lambda x, u, b: (x, u, b.double()), "bias must be"),
    ],
    ids=["nchw", "float64", "one-row", "3-D", "in-channels", "positions", "weights-dtype", "bias-size", "bias-dtype"],
)
def test_bad_input_names_the_problem(change, message):
    x, u, b = change(*good_args())
    with pytest.raises(ValueError, match=message):
        feature_maps.winograd_conv3x3_reflect(x, u, b, True)


def test_serves_only_what_it_computes():
    x = good_args()[0]
    assert feature_maps.serves_winograd(x, 32)
    assert not feature_maps.serves_winograd(x, 3)  # the last layer: too few outputs to pay
    assert not feature_maps.serves_winograd(x.contiguous(), 32)
    assert not feature_maps.serves_winograd(x.double(), 32)
    assert not feature_maps.serves_winograd(x[:, :, :1], 32)
    assert not feature_maps.serves_winograd(x.clone().requires_grad_(), 32)
    with torch.no_grad():
        assert feature_maps.serves_winograd(x.clone().requires_grad_(), 32)


def test_opcheck():
    torch.library.opcheck(torch.ops.adain_cuda.winograd_conv3x3_reflect.default, (*good_args(), True))


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    x, u, b = good_args()

    def f(x):
        return feature_maps.winograd_conv3x3_reflect(x * 2, u, b, True) + 1

    torch.testing.assert_close(torch.compile(f, fullgraph=True)(x), f(x), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 256, 512, 4, 5), (2, 64, 64, 9, 7), (1, 32, 32, 40, 60)], ids=str)
def test_results_do_not_depend_on_the_thread_count(shape):
    """The same bits with one thread and with several, also when the map is one block of tiles
    (dataset stylization promises the same bytes from any number of processes)."""
    x, weight, bias = layer(shape, 12)
    u = feature_maps.winograd_weights(weight)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(feature_maps.winograd_conv3x3_reflect(x, u, bias, True))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], r) for r in results[1:])
