"""Networks, weight loading and the Stylizer against an independent pure-PyTorch pipeline."""

import pytest
import torch

from adain_cuda.images import imaging
from adain_cuda.models import Decoder, Encoder, WeightsError
from adain_cuda.stylize import Stylizer

from community_layout import DECODER_CONVS, VGG_CONVS, PlainPipeline, random_state


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    vgg, dec = random_state(VGG_CONVS, 1), random_state(DECODER_CONVS, 2)
    torch.save(vgg, folder / "vgg_normalised.pth")
    torch.save(dec, folder / "decoder.pth")
    return folder / "vgg_normalised.pth", folder / "decoder.pth", vgg, dec


@pytest.fixture(scope="module")
def pipelines(weight_files):
    vgg_path, dec_path, vgg, dec = weight_files
    ours = Stylizer.from_pretrained(vgg_path, dec_path, allow_download=False, device="cpu")
    return ours, PlainPipeline(vgg, dec)


def image(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 1, 1, generator=g)
    return (0.6 * torch.rand(3, h, w, generator=g) + 0.4 * base).clamp(0, 1)


def assert_same_image(a, b):
    scale = b.abs().max().item()
    err = (a - b).abs().max().item()
    assert err <= 2e-4 * max(scale, 1.0), f"max difference {err} (scale {scale})"


CONTENT, STYLES = image(64, 80, 0), [image(48, 48, 1), image(40, 56, 2)]


def test_plain_and_alpha(pipelines):
    ours, plain = pipelines
    for alpha in (1.0, 0.4):
        out = ours.stylize(CONTENT, STYLES[0], alpha=alpha, content_size=0, style_size=0)
        assert out.shape == CONTENT.shape
        assert_same_image(out, plain(CONTENT, STYLES[:1], alpha=alpha))


def test_interpolation(pipelines):
    ours, plain = pipelines
    out = ours.stylize(CONTENT, STYLES, weights=[1.0, 3.0], alpha=0.8, content_size=0, style_size=0)
    assert_same_image(out, plain(CONTENT, STYLES, weights=[1.0, 3.0], alpha=0.8))


def test_color_preservation(pipelines):
    ours, plain = pipelines
    out = ours.stylize(CONTENT, STYLES[0], preserve_color=True, content_size=0, style_size=0)
    assert_same_image(out, plain(CONTENT, STYLES[:1], preserve_color=True))
    out = ours.stylize(CONTENT, STYLES, weights=[1, 1], preserve_color=True, content_size=0, style_size=0)
    assert_same_image(out, plain(CONTENT, STYLES, weights=[1, 1], preserve_color=True))


def test_mask_foreground_background(pipelines):
    ours, plain = pipelines
    mask = torch.zeros(64, 80)
    mask[:, :40] = 1.0  # aligned to the 8-pixel feature grid: binary at relu4_1 too
    out = ours.stylize(CONTENT, STYLES, masks=mask, content_size=0, style_size=0)
    assert_same_image(out, plain(CONTENT, STYLES, mask=mask[::8, ::8]))


def test_soft_and_rgb_masks_are_finite(pipelines, tmp_path):
    ours, _ = pipelines
    soft = torch.linspace(0, 1, 80).expand(64, 80)
    assert torch.isfinite(ours.stylize(CONTENT, STYLES, masks=soft, content_size=0, style_size=0)).all()
    rgb = tmp_path / "mask.png"
    imaging.save_image(soft.expand(3, 64, 80) * torch.tensor([1.0, 0.9, 0.8]).view(3, 1, 1), rgb)
    small = tmp_path / "small.png"
    imaging.save_image(soft[::2, ::2].expand(3, 32, 40), small)  # another size, same aspect
    for m in (rgb, small):
        assert torch.isfinite(ours.stylize(CONTENT, STYLES, masks=m, content_size=0, style_size=0)).all()
    with pytest.raises(imaging.ImageError, match="aspect ratios differ"):
        ours.stylize(CONTENT, STYLES, masks=torch.ones(80, 64), content_size=0, style_size=0)
    with pytest.raises(ValueError, match="mask"):
        ours.stylize(CONTENT, STYLES + STYLES[:1], masks=[soft, soft], content_size=0, style_size=0)


def test_style_statistics_are_cached(pipelines, tmp_path):
    ours, _ = pipelines
    path = tmp_path / "style.png"
    imaging.save_image(STYLES[0], path)
    before = ours.style_encodes
    for seed in range(3):
        ours.stylize(image(32, 40, 10 + seed), path, content_size=0, style_size=0)
    assert ours.style_encodes == before + 1
    fresh = image(40, 56, 30)  # a tensor style: keyed by its values, so a copy hits the cache
    ours.stylize(image(32, 40, 20), fresh, content_size=0, style_size=0)
    ours.stylize(image(32, 40, 21), fresh.clone(), content_size=0, style_size=0)
    assert ours.style_encodes == before + 2


def test_sizes_crop_and_crop_back(pipelines):
    ours, _ = pipelines
    content = image(90, 130, 5)  # not a multiple of 8: decoded 96 x 136, cropped back
    assert ours.stylize(content, STYLES[0], content_size=0, style_size=0).shape == (3, 90, 130)
    assert ours.stylize(content, STYLES[0], content_size=45, style_size=32).shape == (3, 45, 65)
    assert ours.stylize(content, STYLES[0], content_size=40, style_size=32, crop=True).shape == (3, 40, 40)


def test_bf16_close_to_fp32(weight_files, monkeypatch):
    import adain_cuda.stylize.stylizer as module

    monkeypatch.setattr(module, "cpu_computes_bf16", lambda: True)  # bf16 itself, even where emulated
    vgg_path, dec_path, *_ = weight_files
    fp32 = Stylizer.from_pretrained(vgg_path, dec_path, allow_download=False, device="cpu")
    bf16 = Stylizer.from_pretrained(
        vgg_path, dec_path, allow_download=False, device="cpu", precision="bf16", channels_last=True
    )
    a = fp32.stylize(CONTENT, STYLES[0], content_size=0, style_size=0)
    b = bf16.stylize(CONTENT, STYLES[0], content_size=0, style_size=0)
    rel = ((a - b).norm() / a.norm()).item()
    assert bf16.dtype == torch.bfloat16 and 0 < rel < 0.05, f"bf16 relative difference {rel}"


def test_bad_arguments(pipelines):
    ours, _ = pipelines
    with pytest.raises(ValueError, match="interpolation weight"):
        ours.stylize(CONTENT, STYLES, weights=[1.0], content_size=0)
    with pytest.raises(ValueError, match="must not be negative"):
        ours.stylize(CONTENT, STYLES, weights=[1.0, -1.0], content_size=0)
    with pytest.raises(ValueError, match="pass interpolation weights"):
        ours.stylize(CONTENT, STYLES, content_size=0)
    with pytest.raises(ValueError, match="alpha"):
        ours.stylize(CONTENT, STYLES[0], alpha=2.0)
    for device, match in [("tpu", "unknown `device`|unsupported `device`"), ("cuda:7", "CUDA|does not exist")]:
        with pytest.raises(ValueError, match=match):
            Stylizer(Encoder(), Decoder(), device=device)
    with pytest.raises(ValueError, match="precision"):
        Stylizer(Encoder(), Decoder(), device="cpu", precision="int8")


def test_huge_image_is_refused_before_running(pipelines, monkeypatch):
    ours, _ = pipelines
    import adain_cuda.stylize.stylizer as module

    monkeypatch.setattr(module, "_available_memory", lambda device: 50 * 2**20)
    with pytest.raises(imaging.ImageError, match="`content_size`"):
        ours.stylize(image(600, 800, 3), STYLES[0], content_size=0)


# ---------------------------------------------------------------- weight files ----
def test_loads_full_and_truncated_vgg_files(weight_files, tmp_path):
    _, _, vgg, _ = weight_files
    first31 = {k: v for k, v in vgg.items() if int(k.split(".")[0]) < 31}
    torch.save(first31, tmp_path / "enc.pth")
    a, b = Encoder().load_weights(tmp_path / "enc.pth"), Encoder().load_weights(vgg)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", "missing keys \\['28.bias'\\]"),
        ("unexpected", "unexpected keys \\['99.weight'\\]"),
        ("shape", "wrong shapes: 1.weight: file \\(256, 512, 1, 1\\)"),
        ("not_dict", "not a state dict"),
        ("truncated", "truncated or corrupt"),
        ("garbage", "truncated or corrupt|not a plain state dict|a text file"),
        ("absent", "not found"),
    ],
)
def test_decoder_file_problems_are_named(weight_files, tmp_path, case, match):
    _, dec_path, _, dec = weight_files
    path = tmp_path / "decoder.pth"
    state = dict(dec)
    if case == "missing":
        del state["28.bias"]
    elif case == "unexpected":
        state["99.weight"] = torch.zeros(1)
    elif case == "shape":
        state["1.weight"] = torch.zeros(256, 512, 1, 1)
    if case == "not_dict":
        torch.save([1, 2, 3], path)
    elif case == "truncated":
        path.write_bytes(dec_path.read_bytes()[: dec_path.stat().st_size // 2])
    elif case == "garbage":
        path.write_bytes(b"this is not a weight file" * 100)
    elif case != "absent":
        torch.save(state, path)
    with pytest.raises(WeightsError, match=match):
        Decoder().load_weights(path)


def test_trainer_style_decoder_round_trip(weight_files, tmp_path):
    _, dec_path, _, _ = weight_files
    decoder = Decoder().load_weights(dec_path)
    torch.save(decoder.community_state_dict(), tmp_path / "trained.pth")
    again = Decoder().load_weights(tmp_path / "trained.pth")
    assert all(torch.equal(a, b) for a, b in zip(decoder.state_dict().values(), again.state_dict().values()))
