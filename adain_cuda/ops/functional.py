"""The public AdaIN functions, and the Python side of the ``torch.ops.adain_cuda`` operators.

The operators are defined, checked, implemented and differentiated in C++ (csrc/; the backward
passes are operators too, so compiled graphs trace them without breaks). Here they get their
fake kernels: shapes and strides for torch.compile and meta tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _checks, _library, reference
from ._common import kernel_output_like, new_stats, stats_dtype, use_reference

__all__ = ["adain", "adain_from_stats", "channel_stats"]


def _register_fakes() -> None:
    """Shapes, dtypes and strides of the operators' outputs, for torch.compile and meta tensors.
    The statistics come packed (csrc/schemas.cpp)."""
    lib = "adain_cuda::"

    # The fake kernels check what the C++ set-up checks: mixed devices (a meta tensor beside a CPU
    # one) dispatch here, and compiled code fails at trace time with the eager message.
    @torch.library.register_fake(lib + "channel_stats")
    def _(x, eps, unbiased):
        _check_stats_args(x, eps)
        return new_stats(x, rows=2)

    @torch.library.register_fake(lib + "channel_stats_backward")
    def _(grad_stats, x, stats, unbiased):
        return kernel_output_like(x)

    @torch.library.register_fake(lib + "adain")
    def _(content, style, alpha, eps, unbiased):
        _check_adain_args(content, style, alpha, eps)
        n, c, ns = content.shape[0], content.shape[1], style.shape[0]
        return kernel_output_like(content), content.new_empty((2 * (n + ns) * c,), dtype=stats_dtype(content.dtype))

    @torch.library.register_fake(lib + "adain_from_stats")
    def _(content, style_mean, style_std, alpha, eps, unbiased):
        _check_from_stats(content, style_mean, style_std, alpha, eps)
        return kernel_output_like(content), new_stats(content, rows=2)

    @torch.library.register_fake(lib + "adain_backward")
    def _(grad_out, content, content_stats, style_std, alpha, unbiased):
        return kernel_output_like(content), new_stats(content, rows=2)


if _library.loaded():
    _register_fakes()
    _OPS = torch.ops.adain_cuda
    _CHANNEL_STATS = _OPS.channel_stats.default
    _ADAIN = _OPS.adain.default
    _ADAIN_FROM_STATS = _OPS.adain_from_stats.default

# The public functions call the operators directly: the C++ set-up checks every argument, so the
# Python checks run only when that call fails, to raise the same error as a ValueError or
# TypeError naming the argument (and on the reference path, which checks nothing itself).


def channel_stats(x: Tensor, *, eps: float = 1e-5, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Per-(n, c) mean and ``sqrt(var + eps)`` of an (N, C, H, W) map, each of shape (N, C).

    The statistics are float32 (float64 for float64 input), accumulated in that precision
    whatever the input dtype. ``unbiased=True`` divides the variance by H*W - 1 (the common
    PyTorch AdaIN code), ``False`` by H*W (the paper). A plane of one element has variance 0.
    """
    try:
        if x.device.type in _library.KERNEL_DEVICE_TYPES:
            stats = _CHANNEL_STATS(x, eps, bool(unbiased))
            return stats[0], stats[1]
    except Exception:
        _check_stats_args(x, eps)
        raise
    eps = _check_stats_args(x, eps)
    use_reference(x)
    return reference.channel_stats(x.to(stats_dtype(x.dtype)), eps=eps, unbiased=unbiased)


def adain(content: Tensor, style: Tensor, *, alpha: float = 1.0, eps: float = 1e-5, unbiased: bool = True) -> Tensor:
    """Adaptive instance normalization: give ``content`` the per-channel mean and std of ``style``.

    ``content`` is (N, C, H, W); ``style`` is (N, C, Hs, Ws) or (1, C, Hs, Ws), shared by the whole
    batch, with any spatial size. The result is ``alpha * AdaIN(content, style) + (1 - alpha) *
    content`` in the content's dtype and memory format (NCHW or channels_last). Gradients flow to
    both inputs.
    """
    try:
        if content.device.type in _library.KERNEL_DEVICE_TYPES:
            return _ADAIN(content, style, alpha, eps, bool(unbiased))[0]
    except Exception:
        _check_adain_args(content, style, alpha, eps)
        raise
    alpha, eps = _check_adain_args(content, style, alpha, eps)
    use_reference(content)
    return reference.adain(content, style, alpha=alpha, eps=eps, unbiased=unbiased)


def adain_from_stats(
    content: Tensor,
    style_mean: Tensor,
    style_std: Tensor,
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
    unbiased: bool = True,
) -> Tensor:
    """AdaIN towards precomputed style statistics (e.g. from :func:`channel_stats`).

    ``style_mean`` and ``style_std`` have shape (N, C), (1, C) or (C,). Computing a style's
    statistics once and reusing them saves re-reading the style features (video, style caches).
    ``eps`` and ``unbiased`` apply to the content's statistics. Gradients flow to the content and
    to both statistics.
    """
    try:
        if content.device.type in _library.KERNEL_DEVICE_TYPES:
            dtype = stats_dtype(content.dtype)
            return _ADAIN_FROM_STATS(
                content, _stats_rows(style_mean, dtype), _stats_rows(style_std, dtype), alpha, eps, bool(unbiased)
            )[0]
    except Exception:
        _check_from_stats(content, style_mean, style_std, alpha, eps)
        raise
    style_mean, style_std, alpha, eps = _check_from_stats(content, style_mean, style_std, alpha, eps)
    use_reference(content)
    return reference.adain_from_stats(content, style_mean, style_std, alpha=alpha, eps=eps, unbiased=unbiased)


def _stats_rows(stat: Tensor, dtype: torch.dtype) -> Tensor:
    """(C,) statistics as (1, C), in the kernels' statistics dtype (the C++ set-up checks shapes)."""
    return (stat.unsqueeze(0) if stat.dim() == 1 else stat).to(dtype)


# The arguments each op's C++ set-up checks, checked in Python with the same messages as
# ValueError/TypeError: after a failed call, on the reference path, and in the fake kernels.
# Each returns the arguments the reference takes, normalized.
def _check_stats_args(x, eps) -> float:
    _checks.feature_map(x, "x")
    return _checks.scalars(1.0, eps)[1]


def _check_adain_args(content, style, alpha, eps) -> tuple[float, float]:
    _checks.content_and_style(content, style)
    return _checks.scalars(alpha, eps)


def _check_from_stats(content, style_mean, style_std, alpha, eps) -> tuple[Tensor, Tensor, float, float]:
    _checks.feature_map(content, "content")
    style_mean = _checks.style_stats(content, style_mean, "style_mean")
    style_std = _checks.style_stats(content, style_std, "style_std")
    if style_mean.shape != style_std.shape:
        raise ValueError(
            f"style_mean and style_std must have the same shape, got "
            f"{tuple(style_mean.shape)} and {tuple(style_std.shape)}"
        )
    return (style_mean, style_std, *_checks.scalars(alpha, eps))
