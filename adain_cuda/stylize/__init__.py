"""Images in, stylized images out: the :class:`Stylizer` (alpha, style interpolation, colour
preservation, spatial masks, a style-statistics cache, CUDA graphs), the checks of its inputs
(:mod:`.inputs`), style banks (:mod:`.style_bank`: a folder's style statistics, encoded once),
masked AdaIN (:mod:`.spatial`) and colour transfer (:mod:`.recolor`). Image files, contact sheets
and colour matching are in :mod:`adain_cuda.images`."""

from .._device import parse_device
from ..images.imaging import ImageError, ImageSource, load_image, save_image
from .inputs import normalise_weights
from .style_bank import StyleBank, StyleBankError, build_style_bank
from .stylizer import PRECISIONS, ContentStatsHook, Stylizer

__all__ = [
    "PRECISIONS",
    "ContentStatsHook",
    "ImageError",
    "ImageSource",
    "StyleBank",
    "StyleBankError",
    "Stylizer",
    "build_style_bank",
    "load_image",
    "normalise_weights",
    "parse_device",
    "save_image",
]
