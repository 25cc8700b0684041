"""Contact sheets: contents down the left, styles across the top, results in the grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image, ImageOps

from . import imaging
from .imaging import ImageSource

__all__ = ["contact_sheet"]

_BACKGROUND = (255, 255, 255)
_MISSING = (200, 200, 200)  # a result that failed or is absent


def _cell(source: ImageSource | None, size: int) -> Image.Image:
    canvas = Image.new("RGB", (size, size), _BACKGROUND if source is not None else _MISSING)
    if source is not None:
        img = imaging.to_pil(imaging.load_image(source))
        img = ImageOps.contain(img, (size, size))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def contact_sheet(contents: Sequence[ImageSource], styles: Sequence[ImageSource],
                  results: Mapping[tuple[int, int], ImageSource], *, cell: int = 256,
                  margin: int = 4) -> Image.Image:
    """A (1 + contents) x (1 + styles) grid; ``results[(i, j)]`` is content i in style j."""
    rows, cols = 1 + len(contents), 1 + len(styles)
    step = cell + margin
    sheet = Image.new("RGB", (cols * step + margin, rows * step + margin), _BACKGROUND)
    for j, style in enumerate(styles):
        sheet.paste(_cell(style, cell), (margin + (j + 1) * step, margin))
    for i, content in enumerate(contents):
        top = margin + (i + 1) * step
        sheet.paste(_cell(content, cell), (margin, top))
        for j in range(len(styles)):
            sheet.paste(_cell(results.get((i, j)), cell), (margin + (j + 1) * step, top))
    return sheet
