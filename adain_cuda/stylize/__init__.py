"""Images in, stylized images out: the :class:`Stylizer` (alpha, style interpolation, colour
preservation, spatial masks, a style-statistics cache, CUDA graphs), image I/O
(:mod:`.imaging`), colour matching (:mod:`.color`), masked AdaIN (:mod:`.spatial`) and contact
sheets (:mod:`.sheet`)."""

from ..images.imaging import ImageError, ImageSource, load_image, save_image
from .stylizer import PRECISIONS, ContentStatsHook, Stylizer, normalise_weights, parse_device

__all__ = ["PRECISIONS", "ContentStatsHook", "ImageError", "ImageSource", "Stylizer", "load_image",
           "normalise_weights", "parse_device", "save_image"]
