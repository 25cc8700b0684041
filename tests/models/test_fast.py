"""The exact network rewrites against the plain layer stacks."""

import pytest
import torch
from torch import nn

from adain_cuda.models import Decoder, Encoder, fast
from adain_cuda.models.fast import FastDecoder, FastEncoder, MaxPool2x2, ReflectConv, UpsampleConv, fold_input_affine
from adain_cuda.ops import _library, feature_maps
from adain_cuda.stylize import Stylizer

from community_layout import DECODER_CONVS, VGG_CONVS, random_state

SIZES = [(37, 50), (3, 3), (4, 9), (64, 64), (17, 8), (2, 2), (2, 7)]
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


@pytest.fixture
def no_tf32():
    """fp32 convolutions in true fp32 on CUDA (TF32 rounding would swamp the 1e-4 comparison)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def conv(cin, cout, k, seed):
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k).double()


def plain_layer(c, x, relu):
    """The plain stack a rewrite replaces: reflection padding by 1, the convolution, the ReLU if asked."""
    y = c(nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"))
    return torch.relu(y) if relu else y


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("relu", [True, False])
def test_reflect_conv(size, layout, relu):
    c = conv(5, 7, 3, 0)
    x = torch.randn(2, 5, *size, dtype=torch.float64).contiguous(memory_format=FORMATS[layout])
    torch.testing.assert_close(ReflectConv(c, relu=relu)(x), plain_layer(c, x, relu), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", SIZES + [(1, 1), (1, 5)])
@pytest.mark.parametrize("relu", [True, False])
def test_upsample_conv(size, relu, layout):
    c = conv(4, 6, 3, 1)
    x = torch.randn(2, 4, *size, dtype=torch.float64).contiguous(memory_format=FORMATS[layout])
    plain = plain_layer(c, nn.functional.interpolate(x, scale_factor=2, mode="nearest"), relu)
    out = UpsampleConv(c, relu=relu)(x)
    torch.testing.assert_close(out, plain, rtol=1e-12, atol=1e-12)
    if layout == "channels_last" and min(size) > 1:  # the next layer gets the layout it was given
        assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", [(37, 50), (2, 7), (64, 64)])
def test_rewrites_on_cuda_float32(size, layout, no_tf32):
    """The CUDA paths (cuDNN's fused bias+ReLU, cuBLASLt's epilogue for the border) in float32
    against the plain layers in float64."""
    x = torch.randn(2, 64, *size, dtype=torch.float64)
    up = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    # a 3-channel input (the first layer: im2col GEMM in channels_last) and a 3-channel output (the
    # last); the networks' own first and last layers (3 -> 64, 64 -> 3: the direct kernels)
    for seed, (cin, cout, relu, upsample) in enumerate(
        [
            (16, 24, True, False),
            (3, 24, True, False),
            (16, 3, False, False),
            (16, 24, True, True),
            (3, 64, True, False),
            (64, 3, False, False),
        ]
    ):
        c = conv(cin, cout, 3, seed + 4)
        plain = plain_layer(c, up[:, :cin] if upsample else x[:, :cin], relu)
        layer = (UpsampleConv if upsample else ReflectConv)(c.float().cuda(), relu=relu)
        out = layer(x[:, :cin].float().cuda().contiguous(memory_format=FORMATS[layout])).double().cpu()
        assert out.shape == plain.shape
        assert ((out - plain).abs().max() / plain.abs().max()).item() < 1e-5, (cin, cout, upsample)


@pytest.mark.parametrize("im2col", [True, False])
@pytest.mark.parametrize("size", [(9, 12), (2, 2), (2, 5)])
@pytest.mark.parametrize("cin, cout, relu", [(3, 10, True), (1, 4, False), (2, 3, True)])
def test_reflect_conv_with_few_input_channels(cin, cout, relu, size, im2col):
    """The first layer's im2col GEMM (channels_last inputs with at most 3 channels) and its
    convolution form give the plain result."""
    c = conv(cin, cout, 3, 8)
    layer = ReflectConv(c, relu=relu, options=fast.FastOptions(im2col_first_layer=im2col))
    assert layer.im2col_taps.shape == (cout, fast.IM2COL_WIDTH)
    x = torch.randn(2, cin, *size, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    out = layer(x)
    torch.testing.assert_close(out, plain_layer(c, x, relu), rtol=1e-12, atol=1e-12)
    if im2col and cin > 1:  # (one channel is NCHW and channels_last at once: the convolution form)
        assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", [(8, 12), (7, 12), (8, 5), (1, 1), (2, 2)])
def test_max_pool(size, layout):
    x = torch.randn(2, 6, *size, dtype=torch.float64).contiguous(memory_format=FORMATS[layout])
    torch.testing.assert_close(MaxPool2x2()(x), nn.MaxPool2d(2, 2, 0, ceil_mode=True)(x), rtol=0, atol=0)


@pytest.mark.parametrize("layer_kernels", [True, False], ids=["kernels", "pytorch"])
@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", [(8, 12), (7, 12), (8, 5), (1, 1), (2, 2)])
def test_max_pool_every_path(device, size, layout, layer_kernels):
    x = torch.randn(2, 6, *size, dtype=torch.float64, device=device).contiguous(memory_format=FORMATS[layout])
    pool = MaxPool2x2(fast.FastOptions(layer_kernels=layer_kernels))
    torch.testing.assert_close(pool(x), nn.MaxPool2d(2, 2, 0, ceil_mode=True)(x), rtol=0, atol=0)


@pytest.mark.skipif(not _library.loaded(), reason="needs the compiled extension")
def test_channels_last_inference_runs_the_layer_kernels(nets, device, monkeypatch):
    """Every pooling and sub-pixel interleave of a channels_last pass goes through the kernels
    (three each), and on CUDA the first and last layers too; none while autograd records (they
    have no derivative)."""
    calls = {"max_pool2x2": 0, "subpixel_interleave": 0, "conv3x3_reflect": 0}
    for name in calls:

        def counted(*args, _name=name, _op=getattr(feature_maps, name)):
            calls[_name] += 1
            return _op(*args)

        monkeypatch.setattr(feature_maps, name, counted)
    enc = Encoder().load_weights(nets[0].net.state_dict()).to(device)
    dec = Decoder().load_weights(nets[1].net.state_dict()).to(device)
    fast_enc, fast_dec = FastEncoder(enc), FastDecoder(dec)
    x = torch.rand(1, 3, 32, 40, device=device).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast_dec(fast_enc(x))
    want = {"max_pool2x2": 3, "subpixel_interleave": 3, "conv3x3_reflect": 2 if device == "cuda" else 0}
    assert calls == want
    live = FastDecoder(dec, fast.FastOptions(live_weights=True))
    live(fast_enc(x.requires_grad_())).sum().backward()
    assert calls == want


def test_reflect_conv_needs_two_pixels():
    with pytest.raises(RuntimeError, match="[Pp]adding size should be less than"):
        ReflectConv(conv(2, 3, 3, 0), relu=True)(torch.randn(1, 2, 1, 6, dtype=torch.float64))


def test_fold_input_affine():
    affine, c = conv(3, 3, 1, 2), conv(3, 8, 3, 3)
    x = torch.rand(1, 3, 11, 13, dtype=torch.float64)
    pad = lambda t: nn.functional.pad(t, (1, 1, 1, 1), mode="reflect")  # noqa: E731
    torch.testing.assert_close(fold_input_affine(affine, c)(pad(x)), c(pad(affine(x))), rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def nets():
    return Encoder().load_weights(random_state(VGG_CONVS, 1)), Decoder().load_weights(random_state(DECODER_CONVS, 2))


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", [(37, 50), (24, 24)])
def test_networks_float64_exact(nets, size, layout):
    enc, dec = (
        m.double().eval()
        for m in (Encoder().load_weights(nets[0].net.state_dict()), Decoder().load_weights(nets[1].net.state_dict()))
    )
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    xf = x.contiguous(memory_format=FORMATS[layout])
    with torch.no_grad():
        for a, b in zip(enc.layers(x), FastEncoder(enc).layers(xf)):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
        f = enc(x)
        torch.testing.assert_close(
            FastDecoder(dec)(f.contiguous(memory_format=FORMATS[layout])), dec(f), rtol=1e-10, atol=1e-10
        )


def stylizer(nets, device, precision="fp32", **opts):
    return Stylizer(
        Encoder().load_weights(nets[0].net.state_dict()),
        Decoder().load_weights(nets[1].net.state_dict()),
        device=device,
        precision=precision,
        **opts,
    )


def test_stylizer_fast_path_matches_plain_fp32(nets):
    plain, fast = stylizer(nets, "cpu"), stylizer(nets, "cpu", fast=True)
    content, style = torch.rand(3, 90, 130), torch.rand(3, 64, 64)
    a = plain.stylize(content, style, content_size=0, style_size=0, alpha=0.7)
    b = fast.stylize(content, style, content_size=0, style_size=0, alpha=0.7)
    assert ((a - b).abs().max() / a.abs().max()).item() < 1e-4


# ------------------------------------------------------- the Stylizer's default paths ----
PLAIN = dict(fast=False, channels_last=False, cuda_graphs=False)


def test_defaults_per_device(nets, device):
    s = stylizer(nets, device)
    on_cuda = device == "cuda"
    assert s.fast  # on both: on the CPU its 3x3 layers run as Winograd convolutions
    assert (s.graphs is not None) == on_cuda
    winograd = [m.winograd_weights is not None for m in s.encoder.modules() if isinstance(m, ReflectConv)]
    assert any(winograd) != on_cuda  # no transformed weights kept on the GPU
    assert s.channels_last  # on both: cuDNN and oneDNN read it natively
    plain = stylizer(nets, device, **PLAIN)
    assert (plain.fast, plain.channels_last, plain.graphs) == (False, False, None)


def test_cuda_graphs_need_cuda(nets):
    with pytest.raises(ValueError, match="cuda_graphs=True needs a CUDA device"):
        stylizer(nets, "cpu", cuda_graphs=True)


def test_fast_path_matches_plain_fp32(nets, device, no_tf32):
    plain = stylizer(nets, device, **PLAIN)
    quick = stylizer(nets, device, fast=True, channels_last=True)
    g = torch.Generator().manual_seed(5)
    style = torch.rand(1, 3, 64, 80, generator=g)
    for _ in range(3):  # on CUDA: eager, then captured, then replayed
        content = torch.rand(2, 3, 90, 130, generator=g)
        a = plain.transfer(content, [plain.encode_style(style)], alpha=0.8)
        b = quick.transfer(content, [quick.encode_style(style)], alpha=0.8)
        assert ((a - b).abs().max() / a.abs().max()).item() < 1e-4
    if device == "cuda":
        assert (quick.graphs.captures, quick.graphs.replays) == (1, 2)


def test_fast_path_bf16_within_rounding(nets, device, no_tf32, monkeypatch):
    """bf16 fast path vs the plain bf16 pipeline: both are compared with the plain fp32 result;
    the fast path's error must be of the plain bf16 path's size (rounding), not more. (A CPU
    without native bfloat16 would compute in float32; the numerics are checked in bf16 anyway.)"""
    import adain_cuda.stylize.stylizer as module

    monkeypatch.setattr(module, "cpu_computes_bf16", lambda: True)
    content = torch.rand(1, 3, 96, 120, generator=torch.Generator().manual_seed(6))
    style = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))

    def run(s):
        return s.transfer(content, [s.encode_style(style)])

    exact = run(stylizer(nets, device, **PLAIN))
    plain_err = (run(stylizer(nets, device, "bf16", **PLAIN)) - exact).norm() / exact.norm()
    fast_err = (run(stylizer(nets, device, "bf16", fast=True, channels_last=True)) - exact).norm() / exact.norm()
    assert 0 < plain_err < 0.05
    assert fast_err < 1.5 * plain_err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_replay_is_fresh_each_call(nets):
    s = stylizer(nets, "cuda", "bf16")
    eager = stylizer(nets, "cuda", "bf16", cuda_graphs=False)
    stats = s.encode_style(torch.rand(1, 3, 64, 64))
    contents = [torch.rand(1, 3, 72, 88, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    outs = [s.transfer(c, [stats]) for c in contents]
    assert (s.graphs.captures, s.graphs.replays) == (1, 3)  # eager, capture + replay, replay, replay
    for c, out in zip(contents, outs):  # earlier results are not overwritten by later replays
        torch.testing.assert_close(out, eager.transfer(c, [stats]), rtol=1e-2, atol=1e-2)
    mixed = s.transfer(contents[0], [stats, stats], weights=[0.5, 0.5], alpha=0.5)  # a new key: eager
    assert s.graphs.captures == 1
    torch.testing.assert_close(
        mixed, eager.transfer(contents[0], [stats, stats], weights=[0.5, 0.5], alpha=0.5), rtol=1e-2, atol=1e-2
    )


# ------------------------------------------------------------- training through the rewrites ----
def training_nets(nets):
    enc = Encoder().load_weights(nets[0].net.state_dict()).double().eval()
    dec = Decoder().load_weights(nets[1].net.state_dict()).double()
    return enc, dec


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("size", [(16, 16), (16, 40)])
def test_training_gradients_equal_the_plain_networks_float64(nets, size, layout):
    """The AdaIN training loss through the fast encoder and the fast decoder with live weights:
    the decoder's parameter gradients (and the input's) equal the plain networks' in float64."""
    enc, dec = training_nets(nets)
    fast_enc, fast_dec = FastEncoder(enc), FastDecoder(dec, fast.FastOptions(live_weights=True))
    g = torch.Generator().manual_seed(0)
    t = torch.rand(2, 512, size[0] // 8, size[1] // 8, generator=g, dtype=torch.float64)
    t = t.contiguous(memory_format=FORMATS[layout]).requires_grad_()
    style = [f.detach() for f in enc.layers(torch.rand(2, 3, *size, generator=g, dtype=torch.float64))]

    def loss(encoder, decoder):
        feats = encoder.layers(decoder(t))
        return (
            sum(
                ((a.mean((2, 3)) - b.mean((2, 3))) ** 2).sum() + ((a.std((2, 3)) - b.std((2, 3))) ** 2).sum()
                for a, b in zip(feats, style)
            )
            + (feats[-1] - t).square().mean()
        )

    params = list(dec.parameters())
    got = torch.autograd.grad(loss(fast_enc, fast_dec), [t, *params])
    expected = torch.autograd.grad(loss(enc, dec), [t, *params])
    assert len(params) == 18  # every decoder convolution's weight and bias reached
    for g_, e in zip(got, expected):
        torch.testing.assert_close(g_, e, rtol=1e-9, atol=1e-12)


def test_live_weights_follow_an_optimizer_step(nets):
    """With live weights the fast decoder sees the parameters as they are now; the inference form
    keeps the weights it was built with (its rewrites are fixed copies)."""
    _, dec = training_nets(nets)
    live, frozen = FastDecoder(dec, fast.FastOptions(live_weights=True)), FastDecoder(dec)
    x = torch.rand(1, 512, 3, 4, dtype=torch.float64)
    opt = torch.optim.SGD(dec.parameters(), lr=0.1)
    dec(x).square().mean().backward()
    opt.step()
    with torch.no_grad():
        torch.testing.assert_close(live(x), dec(x), rtol=1e-10, atol=1e-10)
        assert (frozen(x) - dec(x)).abs().max() > 1e-6


def test_cpu_fast_path_runs_its_3x3_layers_as_winograd(nets, monkeypatch):
    """Every ReflectConv holding transformed weights computes through the Winograd kernel in a
    CPU float32 transfer (the fallback would give the same values, so count the calls)."""
    if not _library.loaded():
        pytest.skip("needs the compiled extension")
    s = stylizer(nets, "cpu")
    layers = [m for net in (s.encoder, s.decoder) for m in net.modules() if isinstance(m, ReflectConv)]
    with_weights = sum(m.winograd_weights is not None for m in layers)
    assert with_weights >= 10  # every 3x3 layer but the first, the last and the upsampling ones
    calls = []
    real = feature_maps.winograd_conv3x3_reflect
    monkeypatch.setattr(feature_maps, "winograd_conv3x3_reflect", lambda *a: calls.append(1) or real(*a))
    content = torch.rand(1, 3, 32, 40)
    s.transfer(content, [s.encode_style(torch.rand(1, 3, 32, 32))])
    assert len(calls) == 2 * 8 + with_weights - 8  # the style's encode and the content's, then the decoder
