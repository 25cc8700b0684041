"""Fused training losses: the AdaIN style loss over several VGG layers and the content loss.

    style = adain_cuda.style_loss(feats_of_output, feats_of_style)          # list per layer
    content = adain_cuda.content_loss(relu4_1_of_output, adain_target)
    content, style = adain_cuda.style_content_loss(feats_of_output, feats_of_style, adain_target)

``style_content_loss`` computes the content term in the same pass over the last layer as its style
statistics. All of them run on the ``torch.ops.adain_cuda.losses`` operator: statistics of every
layer, inputs and targets, in one reduction, a deterministic sum to the scalar, and a backward
that is one pointwise pass per layer using the saved statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from . import _checks, _library, reference
from ._common import kernel_output_like, packed_numel, stats_dtype, use_reference

__all__ = ["ContentLoss", "StyleLoss", "content_loss", "style_content_loss", "style_loss"]


def _layer_target(x: Tensor, target, index: int) -> Tensor:
    """A target feature map as is, or a (mean, std) pair packed as a (2, N or 1, C) tensor."""
    where = f"layer {index}"
    if isinstance(target, Tensor):
        _checks.feature_map(target, f"{where} target")
        if target.shape != x.shape:
            raise ValueError(f"{where}: target shape {tuple(target.shape)} differs from the input's {tuple(x.shape)}")
        if target.dtype != x.dtype or target.device != x.device:
            raise ValueError(
                f"{where}: target is {target.dtype} on {target.device} but the input is {x.dtype} on {x.device}"
            )
        return target
    if not (isinstance(target, (tuple, list)) and len(target) == 2):
        raise TypeError(f"{where}: a target must be a feature map or a (mean, std) pair, got {type(target).__name__}")
    mean = _checks.style_stats(x, target[0], f"{where} target mean")
    std = _checks.style_stats(x, target[1], f"{where} target std")
    if mean.shape != std.shape:
        raise ValueError(f"{where}: target mean and std shapes differ: {tuple(mean.shape)} and {tuple(std.shape)}")
    return torch.stack([mean, std]).to(stats_dtype(x.dtype))


def _check_layers(inputs: Sequence[Tensor], targets: Sequence | None, layer_weights) -> list[float]:
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        raise ValueError("inputs must be a non-empty list of feature maps, one per layer")
    first = None
    for index, x in enumerate(inputs):
        _checks.feature_map(x, f"layer {index} input")
        if x.numel() == 0:  # a mean over no elements: refused on every backend alike
            raise ValueError(
                f"layer {index}: input is empty (shape {tuple(x.shape)}): a loss needs at least one "
                "element in every layer"
            )
        if first is None:
            first = x
        elif x.dtype != first.dtype or x.device != first.device:
            raise ValueError(
                f"layer {index}: input is {x.dtype} on {x.device} but layer 0 is "
                f"{first.dtype} on {first.device}; all layers must match"
            )
    if targets is None:
        return []
    if not isinstance(targets, (list, tuple)) or len(targets) != len(inputs):
        got = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
        raise ValueError(f"targets must be a list with one entry per input layer ({len(inputs)}), got {got}")
    if layer_weights is None:
        return [1.0] * len(inputs)
    weights = [float(w) for w in layer_weights]
    if len(weights) != len(inputs):
        raise ValueError(f"layer_weights must have one weight per layer ({len(inputs)}), got {len(weights)}")
    return weights


def _losses(inputs, targets, content_target, weights, eps, unbiased):
    return torch.ops.adain_cuda.losses.default(list(inputs), list(targets), content_target, weights, eps, unbiased)


def style_loss(
    inputs: Sequence[Tensor],
    targets: Sequence,
    *,
    eps: float = 1e-5,
    unbiased: bool = True,
    layer_weights: Sequence[float] | None = None,
) -> Tensor:
    """``sum_l w_l * (MSE(mu_l(input), mu_l(target)) + MSE(sigma_l(input), sigma_l(target)))``.

    ``inputs``: one (N, C, H, W) map per layer (sizes may differ between layers). ``targets``: per
    layer, a map of the input's shape or precomputed ``(mean, std)`` from
    :func:`adain_cuda.channel_stats` of shape (N or 1, C), so a style batch's statistics are
    computed once. Returns a 0-dim float32 tensor (float64 for float64 maps).
    """
    weights = _check_layers(inputs, targets, layer_weights)
    _, eps = _checks.scalars(1.0, eps)
    if use_reference(inputs[0]):
        return reference.style_loss(inputs, targets, eps=eps, unbiased=unbiased, layer_weights=weights)
    packed = [_layer_target(x, t, i) for i, (x, t) in enumerate(zip(inputs, targets))]
    return _losses(inputs, packed, None, weights, eps, bool(unbiased))[0]


def content_loss(input: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between two feature maps of the same shape (0-dim, float32)."""
    _checks.feature_map(input, "input")
    _checks.feature_map(target, "target")
    if input.numel() == 0:
        raise ValueError(f"input is empty (shape {tuple(input.shape)}): a loss needs at least one element")
    if input.shape != target.shape or input.dtype != target.dtype or input.device != target.device:
        raise ValueError(
            f"input and target must match in shape, dtype and device, got "
            f"{tuple(input.shape)} {input.dtype} {input.device} and "
            f"{tuple(target.shape)} {target.dtype} {target.device}"
        )
    if use_reference(input):
        return reference.content_loss(input, target)
    return _losses([input], [], target, [], 1e-5, True)[1]


def style_content_loss(
    inputs: Sequence[Tensor],
    targets: Sequence,
    content_target: Tensor,
    *,
    eps: float = 1e-5,
    unbiased: bool = True,
    layer_weights: Sequence[float] | None = None,
) -> tuple[Tensor, Tensor]:
    """``(content_loss(inputs[-1], content_target), style_loss(inputs, targets))`` in one pass.

    The AdaIN training objective: ``inputs`` are the VGG features of the decoded image (relu1_1 ..
    relu4_1), ``targets`` those of the style images, ``content_target`` the AdaIN output at relu4_1.
    """
    weights = _check_layers(inputs, targets, layer_weights)
    _, eps = _checks.scalars(1.0, eps)
    last = inputs[-1]
    _checks.feature_map(content_target, "content_target")
    if content_target.shape != last.shape or content_target.dtype != last.dtype or content_target.device != last.device:
        raise ValueError(
            f"content_target must match the last input ({tuple(last.shape)}, {last.dtype}, "
            f"{last.device}), got {tuple(content_target.shape)}, {content_target.dtype}, "
            f"{content_target.device}"
        )
    if use_reference(last):
        return (
            reference.content_loss(last, content_target),
            reference.style_loss(inputs, targets, eps=eps, unbiased=unbiased, layer_weights=weights),
        )
    packed = [_layer_target(x, t, i) for i, (x, t) in enumerate(zip(inputs, targets))]
    style, content, _ = _losses(inputs, packed, content_target, weights, eps, bool(unbiased))
    return content, style


class StyleLoss(nn.Module):
    """Module form of :func:`style_loss`: ``StyleLoss(layer_weights=...)(inputs, targets)``."""

    def __init__(self, eps: float = 1e-5, unbiased: bool = True, layer_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.eps, self.unbiased = eps, unbiased
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]

    def forward(self, inputs: Sequence[Tensor], targets: Sequence) -> Tensor:
        return style_loss(inputs, targets, eps=self.eps, unbiased=self.unbiased, layer_weights=self.layer_weights)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, unbiased={self.unbiased}, layer_weights={self.layer_weights}"


class ContentLoss(nn.Module):
    """Module form of :func:`content_loss`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return content_loss(input, target)


# ------------------------------------------------------------------ registration ----
def _register_fakes() -> None:
    """Output shapes for torch.compile and meta tensors; the autograd formulas are C++'s."""

    @torch.library.register_fake("adain_cuda::losses")
    def _(inputs, targets, content_target, weights, eps, unbiased):
        dtype = stats_dtype(inputs[0].dtype)
        scalar = inputs[0].new_empty((), dtype=dtype)
        return scalar, scalar.clone(), inputs[0].new_empty((packed_numel(inputs, targets),), dtype=dtype)

    @torch.library.register_fake("adain_cuda::losses_backward")
    def _(grad_style, grad_content, inputs, targets, content_target, stats, weights, unbiased):
        return [kernel_output_like(x) for x in inputs]


if _library.loaded():
    _register_fakes()
