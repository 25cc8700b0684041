"""Colour transfer: AdaIN on pixels instead of features.

Giving an image another image's per-channel mean and standard deviation is AdaIN applied to the
pixel statistics, the classic colour transfer of Reinhard et al. (2001). In RGB the channels are
strongly correlated, so matching them one by one shifts hues; in the decorrelated lαβ space
(log-LMS cone responses, rotated into luminance and two opponent axes) the match works channel by
channel, and runs on the fused AdaIN kernel. ``method="covariance"`` matches the full 3x3 colour
covariance in RGB instead (what colour preservation uses). No network is involved: this works
without any weight file.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..images.color import match_color
from ..images.imaging import ImageSource, load_image
from ..ops import adain

__all__ = ["METHODS", "recolor", "rgb_to_lab", "lab_to_rgb"]

METHODS = ("lab", "covariance")

_RGB_TO_LMS = torch.tensor(
    [[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]], dtype=torch.float64
)
_LOG_LMS_TO_LAB = torch.diag(
    torch.tensor([1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)], dtype=torch.float64)
) @ torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]], dtype=torch.float64)
_FLOOR = 1e-4  # LMS responses are floored before the logarithm: black pixels stay finite


def _apply(matrix: Tensor, img: Tensor) -> Tensor:
    return torch.einsum("ij,jhw->ihw", matrix.to(img.dtype), img)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(3, H, W) RGB in [0, 1] to lαβ (float64)."""
    lms = _apply(_RGB_TO_LMS, rgb.double()).clamp_min(_FLOOR)
    return _apply(_LOG_LMS_TO_LAB, torch.log10(lms))


def lab_to_rgb(lab: Tensor) -> Tensor:
    """The inverse of :func:`rgb_to_lab` (not clamped)."""
    lms = torch.pow(10.0, _apply(torch.linalg.inv(_LOG_LMS_TO_LAB), lab.double()))
    return _apply(torch.linalg.inv(_RGB_TO_LMS), lms)


def recolor(content: ImageSource, style: ImageSource, *, method: str = "lab", strength: float = 1.0) -> Tensor:
    """``content`` with ``style``'s colour statistics: a (3, H, W) float32 image in [0, 1].

    ``method="lab"``: per-channel mean and std in lαβ, matched with :func:`adain_cuda.adain`
    (``strength`` is its alpha); ``"covariance"``: mean and 3x3 covariance in RGB."""
    if method not in METHODS:
        raise ValueError(f"unknown recolor `method` {method!r}; use one of {', '.join(METHODS)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"`strength` must be in [0, 1], got {strength}")
    c, s = load_image(content), load_image(style)
    if method == "covariance":
        out = match_color(c, s, clamp=False)
        return (strength * out + (1 - strength) * c).clamp(0, 1).float()
    # biased statistics: these are the pixels of two images, not samples of a feature map
    moved = adain(rgb_to_lab(c)[None], rgb_to_lab(s)[None], alpha=strength, unbiased=False)[0]
    return lab_to_rgb(moved).clamp(0, 1).float()
