"""Leaf utilities for pictures, on their own floor (they import nothing else of the package
but :mod:`adain_cuda._files`): image files in and out (:mod:`.imaging`), contact sheets
(:mod:`.sheet`) and colour-statistics matching (:mod:`.color`). The data loader, the CLI and the
Stylizer all use them without pulling in one another."""

from .imaging import IMAGE_EXTENSIONS, ImageError, ImageSource, load_image, load_mask, save_image, save_pil

__all__ = ["IMAGE_EXTENSIONS", "ImageError", "ImageSource", "load_image", "load_mask", "save_image", "save_pil"]
