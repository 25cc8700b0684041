"""One set of checks for images, masks and interpolation weights at every public entry point
(``Stylizer.stylize``, ``Stylizer.transfer``, ``load_image``), and values at the edges of their
ranges: each shape of bad input is refused the same way everywhere, each good one works the same."""

import numpy as np
import pytest
import torch
from PIL import Image

from adain_cuda.images import imaging
from adain_cuda.stylize import Stylizer, normalise_weights

from community_layout import DECODER_CONVS, VGG_CONVS, random_state


@pytest.fixture(scope="module")
def stylizer():
    from adain_cuda.models import Decoder, Encoder

    enc = Encoder().load_weights(random_state(VGG_CONVS, 1))
    dec = Decoder().load_weights(random_state(DECODER_CONVS, 2))
    return Stylizer(enc, dec, device="cpu")


def picture(h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g)


STYLE = picture(32, 32, 1)

# Image tensors that no entry point takes, with the words of the refusal.
BAD_IMAGES = {
    "0..255 floats": (lambda: picture() * 255, "divide by 255"),
    "NaN": (lambda: picture().index_fill_(1, torch.tensor([3]), float("nan")), "NaN"),
    "inf": (lambda: picture().index_fill_(2, torch.tensor([0]), float("inf")), "NaN or infinite"),
    "negative": (lambda: picture() - 2.0, "must be in \\[0, 1\\]"),
    "empty": (lambda: torch.empty(3, 0, 5), "empty"),
    "2 channels": (lambda: torch.rand(2, 20, 20), "must be a"),
    "4-D batch of 2": (lambda: torch.rand(2, 3, 20, 20), "must be a"),
    "5-D": (lambda: torch.rand(1, 1, 3, 20, 20), "must be a"),
    "int32": (lambda: (picture() * 255).int(), "floating point"),
    "bool": (lambda: picture() > 0.5, "floating point"),
    "complex": (lambda: picture().to(torch.complex64), "floating point"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
@pytest.mark.parametrize("entry", ["load_image", "stylize", "stylize_style", "transfer"])
def test_bad_image_tensors_are_refused_at_every_entry_point(case, entry, stylizer):
    make, words = BAD_IMAGES[case]
    bad = make()
    if entry == "transfer" and case == "4-D batch of 2":
        assert stylizer.transfer(bad, [stylizer.style_stats(STYLE, size=0)]).shape == bad.shape  # a batch
        return
    with pytest.raises(imaging.ImageError, match=words):
        if entry == "load_image":
            imaging.load_image(bad)
        elif entry == "stylize":
            stylizer.stylize(bad, STYLE, content_size=0)
        elif entry == "stylize_style":
            stylizer.stylize(picture(), bad, content_size=0, style_size=0)
        else:
            batch = bad if bad.dim() != 3 else bad[None]
            stylizer.transfer(batch, [stylizer.style_stats(STYLE, size=0)])


def test_uint8_means_0_to_255_everywhere(stylizer):
    img = picture()
    as_uint8 = img.mul(255).round().to(torch.uint8)
    assert torch.equal(imaging.load_image(as_uint8), as_uint8.float() / 255)
    stats = [stylizer.style_stats(STYLE, size=0)]
    by_transfer = stylizer.transfer(as_uint8[None], stats)
    assert torch.equal(by_transfer, stylizer.transfer((as_uint8.float() / 255)[None], stats))
    by_stylize = stylizer.stylize(as_uint8, STYLE, content_size=0, style_size=0)
    assert torch.allclose(by_stylize, by_transfer[0], atol=1e-6)


@pytest.mark.parametrize(
    "weights, expected",
    [
        ([1e308, 1e308], [0.5, 0.5]),
        ([1e-9, 1e-9], [0.5, 0.5]),
        ([1e-300, 3e-300], [0.25, 0.75]),
        ([2, 0], [1.0, 0.0]),
        ([1, 3], [0.25, 0.75]),
        (torch.tensor([1.0, 1.0]), [0.5, 0.5]),
    ],
)
def test_weights_normalise_at_any_scale(weights, expected):
    assert normalise_weights(weights, 2) == pytest.approx(expected)


@pytest.mark.parametrize(
    "weights, words",
    [
        ([1.0], "1 interpolation weight"),
        ([1, 2, 3], "3 interpolation weight"),
        ([0, 0], "all zero"),
        ([1, -1], "negative"),
        ([float("nan"), 1], "finite"),
        ([float("inf"), 1], "finite"),
        (["a", 1], "numbers"),
        (None, "pass interpolation weights"),
    ],
)
@pytest.mark.parametrize("entry", ["stylize", "transfer"])
def test_bad_weights_are_refused_at_every_entry_point(weights, words, entry, stylizer):
    styles = [STYLE, picture(24, 36, 2)]
    with pytest.raises(ValueError, match=words):
        if entry == "stylize":
            stylizer.stylize(picture(), styles, weights=weights, content_size=0, style_size=0)
        else:
            stylizer.transfer(picture()[None], [stylizer.style_stats(s, size=0) for s in styles], weights=weights)


def test_transfer_normalises_weights_as_stylize_does(stylizer):
    styles = [STYLE, picture(24, 36, 2)]
    stats = [stylizer.style_stats(s, size=0) for s in styles]
    content = picture()[None]
    a = stylizer.transfer(content, stats, weights=[1.0, 3.0])
    b = stylizer.transfer(content, stats, weights=[0.25, 0.75])
    assert torch.allclose(a, b, atol=1e-5)
    via_stylize = stylizer.stylize(content[0], styles, weights=[1.0, 3.0], content_size=0, style_size=0)
    assert torch.allclose(a[0], via_stylize, atol=1e-5)


BAD_MASKS = {
    "NaN": (lambda: torch.full((40, 48), float("nan")), "NaN"),
    "empty": (lambda: torch.empty(0, 48), "empty"),
    "out of range": (lambda: torch.full((40, 48), 3.0), "in \\[0, 1\\]"),
    "4-D": (lambda: torch.rand(1, 1, 40, 48), "must be an \\(H, W\\)"),
    "int64": (lambda: torch.ones(40, 48, dtype=torch.long), "floating point"),
    "3 masks for 2 styles": (lambda: torch.rand(3, 40, 48), "3 mask"),
    "other aspect": (lambda: torch.rand(40, 200), "aspect ratios differ"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
@pytest.mark.parametrize("entry", ["stylize", "transfer"])
def test_bad_masks_are_refused_at_every_entry_point(case, entry, stylizer):
    make, words = BAD_MASKS[case]
    styles = [STYLE, picture(24, 36, 2)]
    with pytest.raises(ValueError, match=words):
        if entry == "stylize":
            stylizer.stylize(picture(), styles, masks=make(), content_size=0, style_size=0)
        else:
            stylizer.transfer(picture()[None], [stylizer.style_stats(s, size=0) for s in styles], masks=make())


@pytest.mark.parametrize("shape_of", ["(H, W)", "(1, H, W)", "bool", "uint8"])
def test_every_form_of_one_mask_gives_the_same_result(shape_of, stylizer):
    styles = [STYLE, picture(24, 36, 2)]
    mask = torch.zeros(40, 48)
    mask[:, :24] = 1.0
    form = {"(H, W)": mask, "(1, H, W)": mask[None], "bool": mask > 0.5, "uint8": (mask * 255).to(torch.uint8)}[
        shape_of
    ]
    expected = stylizer.stylize(picture(), styles, masks=mask, content_size=0, style_size=0)
    got = stylizer.stylize(picture(), styles, masks=form, content_size=0, style_size=0)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("entry", ["stylize", "transfer"])
def test_weights_with_masks_are_refused_not_ignored(entry, stylizer):
    styles = [STYLE, picture(24, 36, 2)]
    mask = torch.rand(40, 48)
    with pytest.raises(ValueError, match="cannot be combined"):
        if entry == "stylize":
            stylizer.stylize(picture(), styles, masks=mask, weights=[1, 1], content_size=0, style_size=0)
        else:
            stylizer.transfer(
                picture()[None], [stylizer.style_stats(s, size=0) for s in styles], masks=mask, weights=[1, 1]
            )


@pytest.mark.parametrize("content_size", [0, 24])
def test_crop_takes_a_square_at_any_size(content_size, stylizer):
    out = stylizer.stylize(picture(40, 60), STYLE, content_size=content_size, style_size=0, crop=True)
    side = 40 if content_size == 0 else content_size
    assert out.shape == (3, side, side)


# Wide and float greyscale files: the same picture stored as 8-bit, as floats in 0..1 and 0..255,
# and as 10-, 12- and 16-bit integers in 16- and 32-bit containers loads the same.
GREY = (np.arange(40 * 48).reshape(40, 48) % 256).astype(np.uint8)
STORED = {
    "float 0..1": lambda: Image.fromarray(GREY.astype(np.float32) / 255, mode="F"),
    "float 0..255": lambda: Image.fromarray(GREY.astype(np.float32), mode="F"),
    "int32 8-bit": lambda: Image.fromarray(GREY.astype(np.int32), mode="I"),
    "int32 12-bit": lambda: Image.fromarray(GREY.astype(np.int32) * 4095 // 255, mode="I"),
    "int32 16-bit": lambda: Image.fromarray(GREY.astype(np.int32) * 257, mode="I"),
}


@pytest.mark.parametrize("kind", sorted(STORED))
def test_wide_and_float_tiffs_load_by_their_range(kind, tmp_path):
    path = tmp_path / "grey.tif"
    STORED[kind]().save(path)
    got = imaging.load_image(path)[0]
    expected = torch.from_numpy(GREY.astype(np.float32) / 255)
    assert (got - expected).abs().max() < 1.5 / 255, kind


def test_a_float_tiff_with_nan_is_refused(tmp_path):
    arr = GREY.astype(np.float32) / 255
    arr[3, 3] = np.nan
    Image.fromarray(arr, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(imaging.ImageError, match="NaN"):
        imaging.load_image(tmp_path / "nan.tif")


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_computes_in_float32(native, monkeypatch, caplog):
    import adain_cuda.stylize.stylizer as module
    from adain_cuda.models import Decoder, Encoder

    monkeypatch.setattr(module, "cpu_computes_bf16", lambda: native)
    caplog.set_level("INFO", logger="adain_cuda")
    s = Stylizer(Encoder(), Decoder(), device="cpu", precision="bf16")
    assert s.dtype == (torch.bfloat16 if native else torch.float32)
    assert next(s.decoder.parameters()).dtype == s.dtype
    assert ("computing in float32" in caplog.text) is not native
