"""Image loading: every Pillow mode becomes RGB in [0, 1]; broken files get clear errors."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from adain_cuda.images import imaging
from adain_cuda.images.sheet import contact_sheet


def gradient(w=40, h=30):
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :].repeat(h, 0)
    return np.stack([x, 255 - x, np.full_like(x, 128)], -1).astype(np.uint8)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "RGB"])
def test_modes_convert_to_rgb(tmp_path, mode):
    img = Image.fromarray(gradient()).convert(mode)
    path = tmp_path / f"img.{'png' if mode != 'CMYK' else 'jpg'}"
    img.save(path)
    t = imaging.load_image(path)
    assert t.shape == (3, 30, 40) and t.dtype == torch.float32
    assert 0 <= t.min() and t.max() <= 1


def test_transparency_composites_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    assert torch.allclose(imaging.load_image(tmp_path / "clear.png"), torch.ones(3, 4, 4))


def test_16_bit_greyscale(tmp_path):
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    t = imaging.load_image(tmp_path / "deep.png")
    assert t.shape == (3, 2, 2)
    assert t[0, 0, 1] == pytest.approx(1.0) and t[0, 1, 0] == pytest.approx(32768 / 65535, abs=1e-4)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.fromarray(gradient(40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert imaging.load_image(tmp_path / "rot.jpg").shape == (3, 40, 30)


def test_broken_files(tmp_path):
    good = io.BytesIO()
    Image.fromarray(gradient()).save(good, format="PNG")
    (tmp_path / "trunc.png").write_bytes(good.getvalue()[:60])
    (tmp_path / "notes.jpg").write_text("not an image")
    for name in ("trunc.png", "notes.jpg", "absent.png"):
        with pytest.raises(imaging.ImageError, match=name):
            imaging.load_image(tmp_path / name)


def test_tensor_and_pil_sources():
    t = torch.rand(1, 3, 5, 6)
    assert imaging.load_image(t).shape == (3, 5, 6)
    assert imaging.load_image(Image.new("RGB", (6, 5))).shape == (3, 5, 6)
    with pytest.raises(imaging.ImageError, match="must be"):
        imaging.load_image(torch.rand(4, 5, 6))


def test_masks_from_rgb_files_are_soft_weights(tmp_path):
    Image.new("RGB", (8, 4), (255, 255, 255)).save(tmp_path / "white.png")
    Image.new("RGB", (8, 4), (128, 128, 128)).save(tmp_path / "grey.png")
    assert torch.allclose(imaging.load_mask(tmp_path / "white.png"), torch.ones(4, 8))
    assert torch.allclose(imaging.load_mask(tmp_path / "grey.png"), torch.full((4, 8), 128 / 255), atol=1e-3)


def test_resize_crop_save_roundtrip(tmp_path):
    img = torch.rand(3, 30, 60)
    assert imaging.resize_shorter(img, 15).shape == (3, 15, 30)
    assert imaging.resize_shorter(img, 0).shape == (3, 30, 60)
    assert imaging.center_crop(img, 20).shape == (3, 20, 20)
    path = imaging.save_image(img, tmp_path / "deep" / "out.png")
    assert (imaging.load_image(path) - img).abs().max() <= 0.5 / 255 + 1e-6


def test_list_images(tmp_path):
    with pytest.raises(imaging.ImageError, match="no images found"):
        imaging.list_images(tmp_path)
    with pytest.raises(imaging.ImageError, match="not a folder"):
        imaging.list_images(tmp_path / "absent")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "a.JPG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in imaging.list_images(tmp_path)] == ["a.JPG", "b.png"]


def test_contact_sheet_layout():
    red, blue = torch.zeros(3, 10, 20), torch.zeros(3, 20, 10)
    red[0], blue[2] = 1, 1
    sheet = contact_sheet([red], [blue, blue], {(0, 0): red}, cell=32, margin=4)
    assert sheet.size == (3 * 36 + 4, 2 * 36 + 4)
    assert sheet.getpixel((4 + 16, 4 + 36 + 16)) == (255, 0, 0)  # content, left column
    assert sheet.getpixel((4 + 36 + 16, 4 + 16)) == (0, 0, 255)  # style, top row
    assert sheet.getpixel((4 + 72 + 16, 4 + 36 + 16)) == (200, 200, 200)  # missing result


# ---------------------------------------------------------------- values, not only shapes ----
def test_exif_rotation_turns_the_right_way(tmp_path):
    # a red pixel at the top-left; orientation 6 means "rotate 90 degrees clockwise to display"
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[:6, :6] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "rot.png", exif=exif)
    t = imaging.load_image(tmp_path / "rot.png")
    assert t.shape == (3, 40, 30)
    assert t[0, 2, -3] > 0.9 and t[0, 2, 2] < 0.1  # top-left went to the top-right


def test_cmyk_and_palette_colours(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "red.tif")  # no cyan: red
    red = imaging.load_image(tmp_path / "red.tif")[:, 0, 0]
    torch.testing.assert_close(red, torch.tensor([1.0, 0.0, 0.0]))
    pal = Image.new("P", (4, 4))
    pal.putpalette([10, 200, 30] + [0] * 765)
    pal.save(tmp_path / "pal.png")
    torch.testing.assert_close(imaging.load_image(tmp_path / "pal.png")[:, 1, 1], torch.tensor([10, 200, 30]) / 255.0)


def test_16_bit_values_are_scaled_by_65535(tmp_path):
    arr = np.array([[0, 65535], [32768, 4096]], dtype=np.uint16)  # every value below 256 would pass too
    Image.fromarray(arr).save(tmp_path / "deep.png")
    t = imaging.load_image(tmp_path / "deep.png")[0]
    torch.testing.assert_close(t, torch.tensor([[0.0, 1.0], [32768 / 65535, 4096 / 65535]]))


def test_rgba_masks_treat_transparency_as_background(tmp_path):
    arr = np.zeros((4, 8, 4), np.uint8)
    arr[..., :3] = 255  # white everywhere
    arr[:, :4, 3] = 255  # opaque on the left half only
    Image.fromarray(arr, "RGBA").save(tmp_path / "mask.png")
    mask = imaging.load_mask(tmp_path / "mask.png")
    assert torch.equal(mask[:, :4], torch.ones(4, 4)) and torch.equal(mask[:, 4:], torch.zeros(4, 4))


@pytest.mark.parametrize(
    "h, w, size",
    [
        (512, 768, 256),
        (683, 1024, 512),
        (1000, 1500, 333),
        (511, 767, 256),
        (768, 512, 300),
        (341, 512, 512),
        (100, 100, 50),
    ],
)
def test_resize_geometry_is_torchvisions(h, w, size):
    # torchvision's Resize(size): shorter side `size`, longer side int(size * long / short), truncated
    short, long = min(h, w), max(h, w)
    expected_long = int(size * long / short)
    expected = (size, expected_long) if h <= w else (expected_long, size)
    assert imaging.resized_size(h, w, size) == expected
    assert imaging.resize_shorter(torch.rand(3, h, w), size).shape[-2:] == expected


@pytest.mark.parametrize("h, w, size", [(10, 13, 8), (11, 14, 8), (9, 12, 6), (7, 7, 4), (767, 512, 512)])
def test_center_crop_offsets_round_like_torchvision(h, w, size):
    img = torch.arange(h * w, dtype=torch.float32).view(1, h, w)
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))  # CenterCrop's offsets
    torch.testing.assert_close(imaging.center_crop(img, size), img[:, top : top + size, left : left + size])
    with pytest.raises(ValueError, match="positive"):
        imaging.resized_size(h, w, -5)


def test_images_are_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    imaging.save_image(torch.rand(3, 8, 8), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="NaN or infinite"):
        imaging.save_image(torch.full((3, 8, 8), float("nan")), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["out.png"]
