"""Style augmentation in the training loop: each image of a batch stylized, with probability p, by
a random style of a style bank at a random alpha (docs/datasets.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from .stylize import Stylizer
from .stylize.style_bank import StyleBank, bank_for

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "StyleAugment"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class StyleAugment(nn.Module):
    """Stylizes each image of an (N, 3, H, W) batch with probability ``p``, by a style drawn
    uniformly from ``bank`` (a StyleBank, a bank file or a folder of style images) at an alpha
    drawn uniformly from ``alpha`` (a (low, high) range, or one value).

    Images are float tensors on any device, NCHW or channels_last, in [0, 1], or normalised with
    ``normalize`` ("imagenet" or a (mean, std) pair of per-channel tuples), in which case the
    output is normalised the same way. The output has the input's shape, dtype, device and memory
    format; the stylized images are computed under no_grad by ``stylizer`` (default: the
    community weights, downloaded on first use, on the images' device type). Only in training
    mode (``module.train()``, the default); in eval mode the batch passes unchanged. The draws
    come from ``generator`` (a CPU torch.Generator) when given, so a seeded generator repeats them;
    each call draws p, style and alpha for every image whether or not it is stylized, so the
    draws of later batches do not depend on earlier outcomes."""

    def __init__(
        self,
        bank: StyleBank | str | Path,
        stylizer: Stylizer | None = None,
        *,
        p: float = 0.5,
        alpha: float | tuple[float, float] = (0.0, 1.0),
        normalize: str | tuple[Sequence[float], Sequence[float]] | None = None,
        generator: torch.Generator | None = None,
        style_size: int = 512,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`p` must be in [0, 1], got {p}")
        low, high = alpha if isinstance(alpha, tuple) else (alpha, alpha)
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"`alpha` must be a value or a (low, high) range within [0, 1], got {alpha}")
        self.stylizer = stylizer if stylizer is not None else Stylizer.from_pretrained()
        self.bank = bank_for(bank, self.stylizer, style_size=style_size)
        self.p, self.alpha, self.generator = p, (float(low), float(high)), generator
        self.normalize = _normalisation(normalize)

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}, styles={len(self.bank)}"

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"StyleAugment takes (N, 3, H, W) float images, got {tuple(images.shape)} {images.dtype}")
        if not self.training or images.shape[0] == 0:
            return images
        n = images.shape[0]
        chosen = torch.rand(n, generator=self.generator) < self.p
        styles = torch.randint(len(self.bank), (n,), generator=self.generator)
        low, high = self.alpha
        alphas = low + (high - low) * torch.rand(n, generator=self.generator)
        if not bool(chosen.any()):
            return images
        with torch.no_grad():
            picked = images[chosen.to(images.device)]
            if self.normalize is not None:
                mean, std = (t.to(images.device, images.dtype) for t in self.normalize)
                picked = picked * std + mean
            rows = styles[chosen]
            result = self.stylizer.transfer_each(
                picked.float().clamp(0.0, 1.0), self.bank.mean[rows], self.bank.std[rows], alphas[chosen]
            ).clamp(0.0, 1.0)
            result = result.to(images.device, images.dtype)
            if self.normalize is not None:
                result = (result - mean) / std
            out = images.clone()  # keeps the memory format
            out[chosen.to(images.device)] = result
        return out


def _normalisation(normalize) -> tuple[Tensor, Tensor] | None:
    if normalize is None:
        return None
    if normalize == "imagenet":
        normalize = (IMAGENET_MEAN, IMAGENET_STD)
    try:
        mean, std = (torch.tensor([float(v) for v in t]).view(1, 3, 1, 1) for t in normalize)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError('`normalize` must be "imagenet" or a (mean, std) pair of 3-value sequences') from exc
    if not bool((std > 0).all()):
        raise ValueError("`normalize`: the std values must be positive")
    return mean, std
