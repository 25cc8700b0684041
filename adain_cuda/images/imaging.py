"""Image input and output: any image Pillow reads becomes an RGB float tensor in [0, 1].

Greyscale, palette, 16-bit, CMYK and images with transparency (composited on white) are converted;
EXIF orientation is applied. Unreadable files raise ImageError naming the file.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .._files import atomic_path, refuse_existing

__all__ = [
    "ImageError",
    "ImageSource",
    "IMAGE_EXTENSIONS",
    "center_crop",
    "find_images",
    "image_format",
    "image_tensor",
    "list_images",
    "load_image",
    "load_mask",
    "prepare",
    "prepared_size",
    "resize_shorter",
    "resized_size",
    "save_image",
    "save_pil",
    "to_pil",
]

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


# Integer samples are scaled by the smallest of these full scales that holds the image's largest
# value: a 12-bit scan stored in 16- or 32-bit samples is not read as near-black.
_INTEGER_SCALES = tuple(float(2**bits - 1) for bits in (8, 10, 12, 14, 16, 24, 32))
# Float images within this much of [0, 1] are taken as [0, 1] (and clamped): decoder outputs
# overshoot a little. Beyond it they are refused, not guessed (0..255 floats are a common slip).
_FLOAT_SLACK = 0.5


def _integer_scale(largest: float) -> float:
    return next((s for s in _INTEGER_SCALES if largest <= s), max(largest, 1.0))


def _single_channel(img: Image.Image, where: str) -> np.ndarray:
    """A 16-bit, 32-bit integer or float greyscale image as float64 in [0, 1]."""
    arr = np.asarray(img, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ImageError(f"{where}: the image has NaN or infinite pixel values")
    if img.mode == "F":  # float samples: [0, 1] as they are, else the integer range they span
        high = float(arr.max()) if arr.size else 0.0
        return np.clip(arr / (1.0 if high <= 1.0 else _integer_scale(high)), 0, 1)
    if img.mode.startswith("I;16"):
        return arr / 65535.0
    return np.clip(arr / _integer_scale(float(arr.max()) if arr.size else 0.0), 0, 1)


def _pil_to_tensor(img: Image.Image, where: str = "image") -> Tensor:
    """(3, H, W) float32 in [0, 1] from any Pillow mode."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # wide greyscale: integer or float samples
        chan = torch.from_numpy(_single_channel(img, where).astype(np.float32))
        return chan.unsqueeze(0).expand(3, -1, -1).contiguous()
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def image_tensor(t: Tensor, what: str = "image", *, batch: bool = False) -> Tensor:
    """The one check of image tensors at every public entry point: ``batch`` (N, 3, H, W), else
    (3, H, W) or (1, 3, H, W); one channel is taken as grey. uint8 is read as 0..255; floating
    point must be finite and in [0, 1] (a little overshoot is clamped). Returns float32 in [0, 1],
    on the tensor's device. Anything else is an ImageError naming ``what``."""
    if not isinstance(t, Tensor):
        raise ImageError(f"{what} must be a tensor, got {type(t).__name__}")
    t = t.detach()
    if not batch and t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    want = "(N, 3, H, W)" if batch else "(3, H, W) or (1, 3, H, W)"
    if t.dim() != (4 if batch else 3) or t.shape[-3] not in (1, 3):
        raise ImageError(f"{what} must be a {want} tensor, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ImageError(f"{what} is empty (shape {tuple(t.shape)})")
    if t.is_complex() or t.dtype == torch.bool or (not t.is_floating_point() and t.dtype != torch.uint8):
        raise ImageError(f"{what} must be floating point in [0, 1] or uint8 in 0..255, got {t.dtype}")
    if t.dtype == torch.uint8:
        t = t.float().div_(255.0)
    else:
        t = t.float()
        # One pass and one device sync for the whole check: NaN propagates through min and max.
        low, high = torch.stack(torch.aminmax(t)).tolist()
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ImageError(f"{what} has NaN or infinite values")
        if low < -_FLOAT_SLACK or high > 1.0 + _FLOAT_SLACK:
            hint = " (0..255 values? divide by 255, or pass uint8)" if high > 1.0 + _FLOAT_SLACK else ""
            raise ImageError(f"{what} has values from {low:g} to {high:g}; float images must be in [0, 1]{hint}")
        if low < 0.0 or high > 1.0:  # a copy only where there is overshoot to clamp
            t = t.clamp(0.0, 1.0)
    return t.expand(*t.shape[:-3], 3, *t.shape[-2:]).contiguous() if t.shape[-3] == 1 else t


def load_image(source: ImageSource) -> Tensor:
    """An RGB image as a (3, H, W) float32 tensor in [0, 1], from a path, a PIL image or a tensor
    (see :func:`image_tensor`)."""
    if isinstance(source, Tensor):
        return image_tensor(source)
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, Path)):
        img = _open(Path(source))
    else:
        raise ImageError(f"expected a path, a PIL image or a tensor, got {type(source).__name__}")
    where = str(source) if isinstance(source, (str, Path)) else getattr(img, "filename", "") or "the image"
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{where}: image has no pixels")
    return _pil_to_tensor(img, where)


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


def prepared_size(height: int, width: int, size: int, crop: bool) -> tuple[int, int]:
    """The (H, W) :func:`prepare` gives an image of this size: the shorter side ``size`` (0
    keeps it), then with ``crop`` the central square of the shorter side."""
    height, width = resized_size(height, width, size)
    return (min(height, width),) * 2 if crop else (height, width)


def prepare(img: Tensor, size: int, crop: bool) -> Tensor:
    """An image as the networks take it: resized (:func:`resize_shorter`) and, with ``crop``,
    its central square (:func:`center_crop`); the geometry of :func:`prepared_size`."""
    img = resize_shorter(img, size)
    return center_crop(img, min(img.shape[-2:])) if crop else img


def center_crop(img: Tensor, size: int) -> Tensor:
    """The central ``size`` x ``size`` square, its offsets rounded as torchvision's CenterCrop
    rounds them (``int(round((h - size) / 2))``, halves to even)."""
    h, w = img.shape[-2:]
    top, left = max(0, int(round((h - size) / 2.0))), max(0, int(round((w - size) / 2.0)))
    return img[..., top : top + size, left : left + size]


def to_pil(img: Tensor) -> Image.Image:
    """(3, H, W) float tensor (clamped to [0, 1] here) to an 8-bit RGB image."""
    arr = img.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def save_image(img: Tensor, path: str | Path, *, overwrite: bool = True, quality: int = 95) -> Path:
    """Writes a (3, H, W) image in [0, 1] (clamped), creating the folder; the format follows the
    extension. Written through :func:`adain_cuda._files.atomic_path`: a failed write never leaves
    a truncated file under ``path``; with ``overwrite=False`` an existing file is never replaced
    (:class:`~adain_cuda._files.FileExists`). NaN or infinite values are refused, not written."""
    if not torch.isfinite(img).all():
        raise ValueError(
            f"not writing {path}: the image has NaN or infinite values (a diverged decoder or non-finite inputs?)"
        )
    return save_pil(to_pil(img), path, overwrite=overwrite, quality=quality)


def image_format(path: str | Path) -> str:
    """Pillow's format name for ``path``'s extension; ValueError for one it cannot write."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None or Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: unknown image extension; use one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return fmt


def save_pil(pil: Image.Image, path: str | Path, *, overwrite: bool = True, quality: int = 95) -> Path:
    """:func:`save_image` for a PIL image (contact sheets)."""
    path = Path(path)
    fmt = image_format(path)
    refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pil.save(tmp, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return path


def find_images(folder: str | Path) -> list[Path]:
    """Image files below ``folder`` (recursively, by extension, case-insensitively), sorted; an
    ImageError for a missing folder or one without images."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageError(f"{root}: not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageError(f"{root}: no images found (searched recursively for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder (by extension), sorted; raises ImageError for a missing or empty one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files
