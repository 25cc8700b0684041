"""The exact network rewrites against the plain layer stacks."""

import pytest
import torch
from torch import nn

from adain_cuda.fast import FastDecoder, FastEncoder, ReflectConv, UpsampleConv, fold_input_affine
from adain_cuda.models import Decoder, Encoder
from adain_cuda.stylizer import Stylizer
from community_layout import DECODER_CONVS, VGG_CONVS, random_state

SIZES = [(37, 50), (3, 3), (4, 9), (64, 64), (17, 8)]


def conv(cin, cout, k, seed):
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k).double()


@pytest.mark.parametrize("size", SIZES)
def test_reflect_conv(size):
    c = conv(5, 7, 3, 0)
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    plain = torch.relu(c(nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")))
    torch.testing.assert_close(ReflectConv(c, relu=True)(x), plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", SIZES + [(1, 1), (1, 5)])
@pytest.mark.parametrize("relu", [True, False])
def test_upsample_conv(size, relu):
    c = conv(4, 6, 3, 1)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    up = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    plain = c(nn.functional.pad(up, (1, 1, 1, 1), mode="reflect"))
    plain = torch.relu(plain) if relu else plain
    torch.testing.assert_close(UpsampleConv(c, relu=relu)(x), plain, rtol=1e-12, atol=1e-12)


def test_fold_input_affine():
    affine, c = conv(3, 3, 1, 2), conv(3, 8, 3, 3)
    x = torch.rand(1, 3, 11, 13, dtype=torch.float64)
    pad = lambda t: nn.functional.pad(t, (1, 1, 1, 1), mode="reflect")  # noqa: E731
    torch.testing.assert_close(fold_input_affine(affine, c)(pad(x)), c(pad(affine(x))), rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def nets():
    return Encoder().load_weights(random_state(VGG_CONVS, 1)), Decoder().load_weights(random_state(DECODER_CONVS, 2))


@pytest.mark.parametrize("size", [(37, 50), (24, 24)])
def test_networks_float64_exact(nets, size):
    enc, dec = (m.double().eval() for m in (Encoder().load_weights(nets[0].net.state_dict()),
                                            Decoder().load_weights(nets[1].net.state_dict())))
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(enc.layers(x), FastEncoder(enc).layers(x)):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
        f = enc(x)
        torch.testing.assert_close(FastDecoder(dec)(f), dec(f), rtol=1e-10, atol=1e-10)


def test_stylizer_fast_path_matches_plain_fp32(nets):
    plain = Stylizer(Encoder().load_weights(nets[0].net.state_dict()), Decoder().load_weights(nets[1].net.state_dict()),
                     device="cpu")
    fast = Stylizer(Encoder().load_weights(nets[0].net.state_dict()), Decoder().load_weights(nets[1].net.state_dict()),
                    device="cpu", fast=True)
    content, style = torch.rand(3, 90, 130), torch.rand(3, 64, 64)
    a = plain.stylize(content, style, content_size=0, style_size=0, alpha=0.7)
    b = fast.stylize(content, style, content_size=0, style_size=0, alpha=0.7)
    assert ((a - b).abs().max() / a.abs().max()).item() < 1e-4
