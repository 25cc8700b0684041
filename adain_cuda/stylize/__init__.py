"""Images in, stylized images out: the :class:`Stylizer` (alpha, style interpolation, colour
preservation, spatial masks, a style-statistics cache, CUDA graphs), image I/O
(:mod:`.imaging`), colour matching (:mod:`.color`), masked AdaIN (:mod:`.spatial`) and contact
sheets (:mod:`.sheet`)."""

from .._device import parse_device
from ..images.imaging import ImageError, ImageSource, load_image, save_image
from .inputs import normalise_weights
from .stylizer import PRECISIONS, ContentStatsHook, Stylizer

__all__ = [
    "PRECISIONS",
    "ContentStatsHook",
    "ImageError",
    "ImageSource",
    "Stylizer",
    "load_image",
    "normalise_weights",
    "parse_device",
    "save_image",
]
