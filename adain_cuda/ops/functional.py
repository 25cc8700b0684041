"""The public AdaIN functions, and the Python side of the ``torch.ops.adain_cuda`` operators.

The operators are defined and implemented in C++ (csrc/). Here they get their fake kernels
(shapes and strides for torch.compile and meta tensors) and their autograd formulas; the backward
passes are operators too, so compiled graphs trace them without breaks.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _checks, _library, reference
from ._common import kernel_output_like, new_stats, stats_dtype, use_reference

__all__ = ["adain", "adain_from_stats", "channel_stats"]


def _sum_to_batch(grad: Tensor, batch: int) -> Tensor:
    """Gradients of statistics shared over the batch (batch 1) are summed over it."""
    return grad.sum(dim=0, keepdim=True) if batch == 1 and grad.shape[0] != 1 else grad


def _register() -> None:
    lib = "adain_cuda::"

    @torch.library.register_fake(lib + "channel_stats")
    def _(x, eps, unbiased):
        return new_stats(x), new_stats(x)

    @torch.library.register_fake(lib + "channel_stats_backward")
    def _(grad_mean, grad_std, x, mean, std, unbiased):
        return kernel_output_like(x)

    @torch.library.register_fake(lib + "adain")
    def _(content, style, alpha, eps, unbiased):
        nb = style.shape[0]
        return (kernel_output_like(content), new_stats(content), new_stats(content),
                new_stats(style, nb), new_stats(style, nb))

    @torch.library.register_fake(lib + "adain_from_stats")
    def _(content, style_mean, style_std, alpha, eps, unbiased):
        return kernel_output_like(content), new_stats(content), new_stats(content)

    @torch.library.register_fake(lib + "adain_backward")
    def _(grad_out, content, content_mean, content_rstd, style_std, alpha, unbiased):
        return kernel_output_like(content), new_stats(content), new_stats(content)

    # --- autograd -------------------------------------------------------------------------
    ops = torch.ops.adain_cuda

    def stats_setup(ctx, inputs, output):
        x, _eps, unbiased = inputs
        ctx.unbiased = unbiased
        ctx.save_for_backward(x, *output)

    def stats_backward(ctx, grad_mean, grad_std):
        x, mean, std = ctx.saved_tensors
        grad_mean = torch.zeros_like(mean) if grad_mean is None else grad_mean
        grad_std = torch.zeros_like(std) if grad_std is None else grad_std
        return ops.channel_stats_backward(grad_mean, grad_std, x, mean, std, ctx.unbiased), None, None

    torch.library.register_autograd(lib + "channel_stats", stats_backward, setup_context=stats_setup)

    def adain_setup(ctx, inputs, output):
        content, style, alpha, _eps, unbiased = inputs
        _out, c_mean, c_rstd, s_mean, s_std = output
        ctx.alpha, ctx.unbiased = alpha, unbiased
        ctx.mark_non_differentiable(c_mean, c_rstd, s_mean, s_std)
        ctx.save_for_backward(content, style, c_mean, c_rstd, s_mean, s_std)

    def adain_backward(ctx, grad_out, *_stat_grads):
        content, style, c_mean, c_rstd, s_mean, s_std = ctx.saved_tensors
        grad_content, g_mean, g_std = ops.adain_backward(
            grad_out, content, c_mean, c_rstd, s_std, ctx.alpha, ctx.unbiased)
        grad_style = None
        if ctx.needs_input_grad[1]:
            g_mean, g_std = _sum_to_batch(g_mean, style.shape[0]), _sum_to_batch(g_std, style.shape[0])
            grad_style = ops.channel_stats_backward(g_mean, g_std, style, s_mean, s_std, ctx.unbiased)
        return grad_content, grad_style, None, None, None

    torch.library.register_autograd(lib + "adain", adain_backward, setup_context=adain_setup)

    def from_stats_setup(ctx, inputs, output):
        content, style_mean, style_std, alpha, _eps, unbiased = inputs
        _out, c_mean, c_rstd = output
        ctx.alpha, ctx.unbiased = alpha, unbiased
        ctx.mark_non_differentiable(c_mean, c_rstd)
        ctx.save_for_backward(content, c_mean, c_rstd, style_std)

    def from_stats_backward(ctx, grad_out, *_stat_grads):
        content, c_mean, c_rstd, style_std = ctx.saved_tensors
        grad_content, g_mean, g_std = ops.adain_backward(
            grad_out, content, c_mean, c_rstd, style_std, ctx.alpha, ctx.unbiased)
        batch = style_std.shape[0]
        return grad_content, _sum_to_batch(g_mean, batch), _sum_to_batch(g_std, batch), None, None, None

    torch.library.register_autograd(lib + "adain_from_stats", from_stats_backward,
                                    setup_context=from_stats_setup)

    # The backward operators have no derivative of their own: say so instead of returning
    # silently wrong second derivatives.
    def no_double_backward(ctx, *grads):
        raise RuntimeError(
            "adain_cuda: double backward (gradients of gradients, e.g. a gradient penalty) is not "
            "supported by the fused kernels; use adain_cuda.reference for that computation.")

    for name in ("adain_backward", "channel_stats_backward"):
        torch.library.register_autograd(lib + name, no_double_backward)


if _library.loaded():
    _register()


def channel_stats(x: Tensor, *, eps: float = 1e-5, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Per-(n, c) mean and ``sqrt(var + eps)`` of an (N, C, H, W) map, each of shape (N, C).

    The statistics are float32 (float64 for float64 input), accumulated in that precision
    whatever the input dtype. ``unbiased=True`` divides the variance by H*W - 1 (the common
    PyTorch AdaIN code), ``False`` by H*W (the paper). A plane of one element has variance 0.
    """
    _checks.feature_map(x, "x")
    _, eps = _checks.scalars(1.0, eps)
    if use_reference(x):
        mean, std = reference.channel_stats(x.to(stats_dtype(x.dtype)), eps=eps, unbiased=unbiased)
        return mean, std
    return torch.ops.adain_cuda.channel_stats(x, eps, bool(unbiased))


def adain(content: Tensor, style: Tensor, *, alpha: float = 1.0, eps: float = 1e-5,
          unbiased: bool = True) -> Tensor:
    """Adaptive instance normalization: give ``content`` the per-channel mean and std of ``style``.

    ``content`` is (N, C, H, W); ``style`` is (N, C, Hs, Ws) or (1, C, Hs, Ws), shared by the whole
    batch, with any spatial size. The result is ``alpha * AdaIN(content, style) + (1 - alpha) *
    content`` in the content's dtype and memory format (NCHW or channels_last). Gradients flow to
    both inputs.
    """
    _checks.content_and_style(content, style)
    alpha, eps = _checks.scalars(alpha, eps)
    if use_reference(content):
        return reference.adain(content, style, alpha=alpha, eps=eps, unbiased=unbiased)
    return torch.ops.adain_cuda.adain(content, style, alpha, eps, bool(unbiased))[0]


def adain_from_stats(content: Tensor, style_mean: Tensor, style_std: Tensor, *, alpha: float = 1.0,
                     eps: float = 1e-5, unbiased: bool = True) -> Tensor:
    """AdaIN towards precomputed style statistics (e.g. from :func:`channel_stats`).

    ``style_mean`` and ``style_std`` have shape (N, C), (1, C) or (C,). Computing a style's
    statistics once and reusing them saves re-reading the style features (video, style caches).
    ``eps`` and ``unbiased`` apply to the content's statistics. Gradients flow to the content and
    to both statistics.
    """
    _checks.feature_map(content, "content")
    style_mean = _checks.style_stats(content, style_mean, "style_mean")
    style_std = _checks.style_stats(content, style_std, "style_std")
    if style_mean.shape != style_std.shape:
        raise ValueError(f"style_mean and style_std must have the same shape, got "
                         f"{tuple(style_mean.shape)} and {tuple(style_std.shape)}")
    alpha, eps = _checks.scalars(alpha, eps)
    if use_reference(content):
        return reference.adain_from_stats(content, style_mean, style_std, alpha=alpha, eps=eps,
                                          unbiased=unbiased)
    dtype = stats_dtype(content.dtype)
    return torch.ops.adain_cuda.adain_from_stats(
        content, style_mean.to(dtype).contiguous(), style_std.to(dtype).contiguous(),
        alpha, eps, bool(unbiased))[0]
