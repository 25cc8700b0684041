"""Spatial control: different styles in different regions of the content, given by masks.

For each region the content statistics are taken over that region's pixels only (weighted by the
mask, so soft and anti-aliased masks work), and the region gets AdaIN with its style's statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["masks_to_features", "masked_adain"]


def masks_to_features(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """(K, H, W) image-resolution masks to (K, h, w) weights at the feature map's size, averaging
    the pixels each feature covers (a binary mask becomes soft only along its edges)."""
    return F.interpolate(masks.unsqueeze(0).float(), size=size, mode="area")[0].clamp(0, 1)


def masked_adain(
    content: Tensor,
    style_stats: list[tuple[Tensor, Tensor]],
    masks: Tensor,
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
    unbiased: bool = True,
) -> Tensor:
    """AdaIN per region. ``content`` (1, C, h, w); ``style_stats`` K pairs of (mean, std), each
    (1, C); ``masks`` (K, h, w) non-negative weights. Where the masks overlap they are normalised
    to sum to 1; where every mask is 0 the content features are kept unchanged."""
    if masks.shape[0] != len(style_stats):
        raise ValueError(f"{masks.shape[0]} masks for {len(style_stats)} styles")
    x = content.float()
    weights = masks.to(x.device, torch.float32).clamp_min(0)
    total = weights.sum(0)
    covered = total > 1e-6
    weights = torch.where(covered, weights / total.clamp_min(1e-6), torch.zeros_like(weights))
    out = torch.zeros_like(x)
    for w, (s_mean, s_std) in zip(weights, style_stats):
        count = w.sum()
        if count <= 1e-6:
            continue
        w = w.view(1, 1, *w.shape)
        mean = (x * w).sum((2, 3), keepdim=True) / count
        dof = torch.clamp(count - 1.0, min=1.0) if unbiased else torch.clamp(count, min=1.0)
        var = ((x - mean).square() * w).sum((2, 3), keepdim=True) / dof
        normalized = (x - mean) / (var + eps).sqrt()
        out = out + w * (normalized * s_std.float().view(1, -1, 1, 1) + s_mean.float().view(1, -1, 1, 1))
    out = torch.where(covered, out, x)
    return (alpha * out + (1 - alpha) * x).to(content.dtype)
