"""Image loading: every Pillow mode becomes RGB in [0, 1]; broken files get clear errors."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from adain_cuda.stylize import imaging
from adain_cuda.stylize.sheet import contact_sheet


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
    assert sheet.getpixel((4 + 16, 4 + 36 + 16)) == (255, 0, 0)        # content, left column
    assert sheet.getpixel((4 + 36 + 16, 4 + 16)) == (0, 0, 255)        # style, top row
    assert sheet.getpixel((4 + 72 + 16, 4 + 36 + 16)) == (200, 200, 200)  # missing result
