"""Pure-PyTorch reference for every op in the package.

This is the common PyTorch formulation of AdaIN (per-plane mean and std over H*W, ``var + eps``
inside the square root), written with plain tensor operations so autograd differentiates it.
Every kernel is tested against it, and the public functions fall back to it when the compiled
extension is unavailable.

One deliberate difference from the usual code: a plane of one element has variance 0 under either
convention (the usual ``torch.var`` returns NaN there for the unbiased estimator). The kernels do
the same, so results stay finite for every finite input.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_stats", "adain", "adain_from_stats", "style_loss", "content_loss"]


def _planes(x: Tensor) -> Tensor:
    n, c = x.shape[:2]
    return x.reshape(n, c, -1)


def channel_stats(x: Tensor, *, eps: float = 1e-5, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Per-(n, c) mean and ``sqrt(var + eps)``, in the dtype of ``x``."""
    flat = _planes(x)
    p = flat.shape[-1]
    mean = flat.mean(dim=-1)
    denom = max(p - (1 if unbiased else 0), 1)
    var = (flat - mean.unsqueeze(-1)).pow(2).sum(dim=-1) / denom
    return mean, (var + eps).sqrt()


def adain_from_stats(
    content: Tensor,
    style_mean: Tensor,
    style_std: Tensor,
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
    unbiased: bool = True,
) -> Tensor:
    """AdaIN of ``content`` towards given style statistics of shape (N or 1, C)."""
    c_mean, c_std = channel_stats(content, eps=eps, unbiased=unbiased)
    s_mean = style_mean.to(content.dtype)[..., None, None]
    s_std = style_std.to(content.dtype)[..., None, None]
    normalized = (content - c_mean[..., None, None]) / c_std[..., None, None]
    out = normalized * s_std + s_mean
    if alpha != 1.0:
        out = alpha * out + (1.0 - alpha) * content
    return out


def adain(
    content: Tensor,
    style: Tensor,
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
    unbiased: bool = True,
) -> Tensor:
    """``sigma(s) * (x - mu(x)) / sigma(x) + mu(s)``, blended with ``content`` by ``alpha``."""
    s_mean, s_std = channel_stats(style, eps=eps, unbiased=unbiased)
    return adain_from_stats(content, s_mean, s_std, alpha=alpha, eps=eps, unbiased=unbiased)


def style_loss(inputs, targets, *, eps: float = 1e-5, unbiased: bool = True, layer_weights=None) -> Tensor:
    """Sum over layers of ``w * (MSE(mean) + MSE(std))``, the common AdaIN training loss.

    Each target is a feature map or a ``(mean, std)`` pair of shape (N or 1, C).
    """
    total = None
    for index, (x, target) in enumerate(zip(inputs, targets)):
        mean, std = channel_stats(x, eps=eps, unbiased=unbiased)
        if isinstance(target, Tensor):
            t_mean, t_std = channel_stats(target, eps=eps, unbiased=unbiased)
        else:
            t_mean, t_std = (t.to(mean.dtype).reshape(-1, mean.shape[1]) for t in target)
        term = torch.nn.functional.mse_loss(mean, t_mean.expand_as(mean)) + torch.nn.functional.mse_loss(
            std, t_std.expand_as(std)
        )
        if layer_weights is not None:
            term = term * layer_weights[index]
        total = term if total is None else total + term
    if total is None:
        raise ValueError("inputs is empty: pass one feature map per layer")
    return total


def content_loss(input: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between two feature maps."""
    return torch.nn.functional.mse_loss(input, target)
