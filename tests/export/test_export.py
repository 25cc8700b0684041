"""Deployment: ONNX (run by onnxruntime) and torch.export programs match the package; torch.hub
loads the Stylizer from a local clone."""

from pathlib import Path

import pytest
import torch

from adain_cuda import cli
from adain_cuda.export import export_onnx, export_program, stylizer_module
from adain_cuda.models import Decoder, Encoder
from adain_cuda.stylize import Stylizer

from community_layout import DECODER_CONVS, VGG_CONVS, random_state, write_weight_files

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stylizer():
    enc = Encoder().load_weights(random_state(VGG_CONVS, 1))
    dec = Decoder().load_weights(random_state(DECODER_CONVS, 2))
    return Stylizer(enc, dec, device="cpu")


def relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("baked", [True, False], ids=["style_baked_in", "two_inputs"])
def test_onnx_matches_the_package_in_onnxruntime(stylizer, tmp_path, baked):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    g = torch.Generator().manual_seed(3)
    style = torch.rand(3, 48, 64, generator=g)
    path = export_onnx(
        stylizer, tmp_path / "m.onnx", style=style if baked else None, style_size=0, example_size=(64, 64)
    )
    session = ort.InferenceSession(str(path))
    content = torch.rand(1, 3, 80, 104, generator=g)  # another size than the example's
    feeds = {"content": content.numpy()} if baked else {"content": content.numpy(), "style": style[None].numpy()}
    out = torch.from_numpy(session.run(None, feeds)[0])
    # the package itself: the fused op and the Stylizer's own pipeline
    expected = stylizer.transfer(content, [stylizer.encode_style(style[None])]).clamp(0, 1)
    assert out.shape == expected.shape and relative_error(out, expected) < 1e-4


def test_torch_export_program_saves_and_loads(stylizer, tmp_path):
    style = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(4))
    path = export_program(stylizer, tmp_path / "m.pt2", style=style, style_size=0, example_size=(64, 64))
    program = torch.export.load(str(path))
    content = torch.rand(1, 3, 72, 96, generator=torch.Generator().manual_seed(5))
    expected = stylizer_module(stylizer, style, style_size=0)(content)
    torch.testing.assert_close(program.module()(content), expected)


@pytest.mark.parametrize("options", [dict(fast=True), dict(fast=False), dict(precision="bf16")], ids=str)
def test_any_float32_stylizer_exports_the_plain_networks(stylizer, options):
    """The fast path (the default) and the plain one export the same plain float32 networks; a
    Stylizer computing in bf16 (where the CPU has native bf16) is refused."""
    other = Stylizer(
        Encoder().load_weights(random_state(VGG_CONVS, 1)),
        Decoder().load_weights(random_state(DECODER_CONVS, 2)),
        device="cpu",
        **options,
    )
    if other.dtype != torch.float32:
        with pytest.raises(ValueError, match="precision='fp32'"):
            stylizer_module(other)
        return
    module = stylizer_module(other)
    assert all(type(m) in (Encoder, Decoder) for m in (module.encoder, module.decoder))
    g = torch.Generator().manual_seed(6)
    content, style = torch.rand(1, 3, 40, 48, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    # the same weights; channels_last ones (fast=False keeps them) round differently
    torch.testing.assert_close(module(content, style), stylizer_module(stylizer)(content, style), rtol=1e-4, atol=1e-5)


def test_export_refuses_bad_sizes(stylizer, tmp_path):
    with pytest.raises(ValueError, match="multiples of 8"):
        export_program(stylizer, tmp_path / "x.pt2", example_size=(60, 64))
    assert list(tmp_path.iterdir()) == []


def test_cli_export_needs_weights_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(tmp_path))
    assert cli.main(["export", "-o", str(tmp_path / "m.onnx"), "--no-download"]) == 2
    assert "not in the cache" in capsys.readouterr().err


def test_torch_hub_loads_the_stylizer_from_a_local_clone(tmp_path):
    vgg, dec = write_weight_files(tmp_path, 1, 2)
    s = torch.hub.load(str(ROOT), "stylizer", source="local", vgg=vgg, decoder=dec, device="cpu")
    assert s.stylize(torch.rand(3, 32, 40), torch.rand(3, 32, 32), content_size=0).shape == (3, 32, 40)
    layer = torch.hub.load(str(ROOT), "adain_layer", source="local")
    x = torch.randn(2, 4, 5, 5)
    assert layer(x, x).shape == x.shape
