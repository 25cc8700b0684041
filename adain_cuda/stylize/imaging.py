"""Image input and output: any image Pillow reads becomes an RGB float tensor in [0, 1].

Greyscale, palette, 16-bit, CMYK and images with transparency (composited on white) are converted;
EXIF orientation is applied. Unreadable files raise ImageError naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .._files import atomic_path

__all__ = ["ImageError", "ImageSource", "IMAGE_EXTENSIONS", "list_images", "load_image", "load_mask",
           "resize_shorter", "resized_size", "center_crop", "save_image", "save_pil", "to_pil"]

ImageSource = Union[str, Path, Image.Image, Tensor]
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class ImageError(ValueError):
    """An input that is not a usable image."""


def _open(path: Path) -> Image.Image:
    try:
        if not path.is_file():
            if path.is_symlink():
                raise ImageError(f"{path}: a broken link or a link loop, not an image file")
            raise ImageError(f"{path}: no such file")
        with warnings.catch_warnings():
            # Pillow warns, then refuses, as a header claims more pixels than MAX_IMAGE_PIXELS (a
            # decompression bomb, or a huge scan): both are an unusable input here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decode now, so truncated files fail here
                return ImageOps.exif_transpose(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: too large to load safely ({exc}); resize it first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{path}: not a readable image ({exc})") from exc


def _has_alpha(img: Image.Image) -> bool:
    """An alpha channel, or a palette with a transparent entry."""
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _pil_to_tensor(img: Image.Image) -> Tensor:
    """(3, H, W) float32 in [0, 1] from any Pillow mode."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit integer) greyscale
        arr = np.asarray(img, dtype=np.float64)
        arr = arr / (65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0)
        chan = torch.from_numpy(np.clip(arr, 0, 1).astype(np.float32))
        return chan.unsqueeze(0).expand(3, -1, -1).contiguous()
    if img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
        return torch.from_numpy(arr).unsqueeze(0).expand(3, -1, -1).contiguous()
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def load_image(source: ImageSource) -> Tensor:
    """An RGB image as a (3, H, W) float32 tensor in [0, 1], from a path, a PIL image or a tensor
    ((3, H, W) or (1, 3, H, W), values in [0, 1])."""
    if isinstance(source, Tensor):
        t = source.detach()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] != 3:
            raise ImageError(f"an image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(source.shape)}")
        if not t.is_floating_point():
            raise ImageError(f"an image tensor must be floating point in [0, 1], got {t.dtype}")
        return t.float()
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, Path)):
        img = _open(Path(source))
    else:
        raise ImageError(f"expected a path, a PIL image or a tensor, got {type(source).__name__}")
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{getattr(source, 'filename', source)}: image has no pixels")
    return _pil_to_tensor(img)


def load_mask(source: ImageSource) -> Tensor:
    """A mask as an (H, W) float tensor in [0, 1]: the luminance of an RGB or greyscale file, so
    anti-aliased edges stay soft weights, times its opacity where it has an alpha channel (a
    transparent pixel is background, whatever colour it hides)."""
    pil = source if isinstance(source, Image.Image) else None
    if isinstance(source, (str, Path)):
        pil = _open(Path(source))
    if pil is not None and _has_alpha(pil):
        rgba = np.asarray(pil.convert("RGBA"), dtype=np.float32) / 255.0
        luma = 0.299 * rgba[..., 0] + 0.587 * rgba[..., 1] + 0.114 * rgba[..., 2]
        return torch.from_numpy(luma * rgba[..., 3])
    img = load_image(pil if pil is not None else source)
    return 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the shorter side ``size`` (0 keeps the size) and the longer side
    ``int(size * long / short)``, truncated: the geometry of torchvision's ``Resize(size)``, so
    results line up pixel for pixel with the community PyTorch port's."""
    if size < 0:
        raise ValueError(f"a size must be 0 (keep) or positive, got {size}")
    if size == 0 or min(height, width) == size:
        return height, width
    if height <= width:
        return size, max(1, int(size * width / height))
    return max(1, int(size * height / width)), size


def resize_shorter(img: Tensor, size: int) -> Tensor:
    """Resizes (C, H, W) or (N, C, H, W) so the shorter side is ``size`` (0 keeps the size);
    see :func:`resized_size` for the geometry."""
    h, w = img.shape[-2:]
    new = resized_size(h, w, size)
    if new == (h, w):
        return img
    batch = img if img.dim() == 4 else img.unsqueeze(0)
    out = F.interpolate(batch, size=new, mode="bilinear", align_corners=False, antialias=True)
    return out if img.dim() == 4 else out[0]


def center_crop(img: Tensor, size: int) -> Tensor:
    """The central ``size`` x ``size`` square, its offsets rounded as torchvision's CenterCrop
    rounds them (``int(round((h - size) / 2))``, halves to even)."""
    h, w = img.shape[-2:]
    top, left = max(0, int(round((h - size) / 2.0))), max(0, int(round((w - size) / 2.0)))
    return img[..., top:top + size, left:left + size]


def to_pil(img: Tensor) -> Image.Image:
    """(3, H, W) float tensor (clamped to [0, 1] here) to an 8-bit RGB image."""
    arr = img.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def save_image(img: Tensor, path: str | Path) -> Path:
    """Writes a (3, H, W) image in [0, 1] (clamped), creating the folder; the format follows the
    extension. Written to a temporary file and renamed: a failed write never leaves a truncated
    file under ``path``, and an existing file there stays until the new one is complete."""
    if not torch.isfinite(img).all():
        raise ValueError(f"not writing {path}: the image has NaN or infinite values (a diverged "
                         "decoder or non-finite inputs?)")
    return save_pil(to_pil(img), path)


def save_pil(pil: Image.Image, path: str | Path) -> Path:
    """:func:`save_image` for a PIL image (contact sheets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension; use one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder (by extension), sorted; raises ImageError for a missing or empty one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files
