"""Color preservation: recolor an image to another image's color statistics.

Per-channel mean and 3x3 covariance matching ("CORAL"): the style image is given the content's
color distribution before it is encoded, so the stylization keeps the content's colors.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["match_color"]


def _sqrt_and_inv_sqrt(cov: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    vals, vecs = torch.linalg.eigh(cov + eps * torch.eye(3, dtype=cov.dtype, device=cov.device))
    vals = vals.clamp_min(eps)
    return (vecs * vals.sqrt()) @ vecs.T, (vecs * vals.rsqrt()) @ vecs.T


def match_color(source: Tensor, target: Tensor, *, eps: float = 1e-5, clamp: bool = True) -> Tensor:
    """``source`` (3, H, W) recolored to the mean and covariance of ``target`` (3, H', W').

    ``out = C_t^(1/2) C_s^(-1/2) (s - mu_s) + mu_t`` per pixel, computed in float64; ``eps`` keeps
    flat (e.g. greyscale) images invertible. The result is clamped to [0, 1] unless ``clamp`` is
    False.
    """
    if source.dim() != 3 or source.shape[0] != 3 or target.dim() != 3 or target.shape[0] != 3:
        raise ValueError(f"match_color takes (3, H, W) images, got {tuple(source.shape)} and {tuple(target.shape)}")
    s = source.reshape(3, -1).double()
    t = target.reshape(3, -1).double().to(s.device)
    mu_s, mu_t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    cov_s = torch.cov(s, correction=0)
    cov_t = torch.cov(t, correction=0)
    _, inv_sqrt_s = _sqrt_and_inv_sqrt(cov_s, eps)
    sqrt_t, _ = _sqrt_and_inv_sqrt(cov_t, eps)
    out = (sqrt_t @ inv_sqrt_s @ (s - mu_s) + mu_t).reshape(source.shape).to(source.dtype)
    return out.clamp(0, 1) if clamp else out
