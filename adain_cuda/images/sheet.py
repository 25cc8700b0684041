"""Contact sheets: contents down the left, styles across the top, results in the grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image, ImageOps

from . import imaging
from .imaging import ImageSource

__all__ = ["contact_sheet"]

_BACKGROUND = (255, 255, 255)
_MISSING = (200, 200, 200)  # a result that failed or is absent, or an input that cannot be read
MAX_SHEET_PIXELS = 1 << 28  # 268 megapixels (0.8 GB as RGB): beyond that, refuse up front


def _cell(source: ImageSource | None, size: int) -> Image.Image:
    canvas = Image.new("RGB", (size, size), _MISSING)
    if source is None:
        return canvas
    try:
        img = imaging.to_pil(imaging.load_image(source))
    except imaging.ImageError:  # an unreadable input is shown as missing, not fatal
        return canvas
    canvas.paste(_BACKGROUND, (0, 0, size, size))
    img = ImageOps.contain(img, (size, size))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def contact_sheet(
    contents: Sequence[ImageSource],
    styles: Sequence[ImageSource],
    results: Mapping[tuple[int, int], ImageSource],
    *,
    cell: int = 256,
    margin: int = 4,
) -> Image.Image:
    """A (1 + contents) x (1 + styles) grid; ``results[(i, j)]`` is content i in style j.
    Unreadable or missing images are grey cells."""
    rows, cols = 1 + len(contents), 1 + len(styles)
    if not 1 <= cell <= 8192:
        raise ValueError(
            f"cell size must be between 1 and 8192 pixels, got {cell}: use a smaller cell size (e.g. `cell` 256)"
        )
    step = cell + margin
    width, height = cols * step + margin, rows * step + margin
    if width * height > MAX_SHEET_PIXELS:
        raise ValueError(
            f"a {rows}x{cols} contact sheet with {cell}-pixel cells would be {width}x{height} "
            f"pixels ({width * height / 1e6:.0f} megapixels, more than {MAX_SHEET_PIXELS / 1e6:.0f}); "
            f"use a smaller cell size (e.g. `cell` 256) or fewer images"
        )
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    for j, style in enumerate(styles):
        sheet.paste(_cell(style, cell), (margin + (j + 1) * step, margin))
    for i, content in enumerate(contents):
        top = margin + (i + 1) * step
        sheet.paste(_cell(content, cell), (margin, top))
        for j in range(len(styles)):
            sheet.paste(_cell(results.get((i, j)), cell), (margin + (j + 1) * step, top))
    return sheet
