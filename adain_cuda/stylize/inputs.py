"""The one set of checks for what a caller hands the Stylizer besides images (images are checked
by :func:`adain_cuda.images.imaging.image_tensor`): style interpolation weights and spatial
masks, the same at every public entry point (``stylize``, ``transfer``, video)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..images import imaging
from ..images.imaging import ImageError

__all__ = ["load_masks", "normalise_weights"]


def normalise_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Style interpolation weights, one per style, non-negative and not all zero, scaled to sum 1
    (None: a single style). Scaled by the largest first, so 1e308 and 1e-9 work like 1."""
    if weights is None:
        if count > 1:
            raise ValueError(f"{count} styles given: pass interpolation weights (`weights`, one per style) or `masks`")
        return [1.0]
    if isinstance(weights, Tensor):
        weights = weights.detach().cpu().flatten().tolist()
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`weights`: interpolation weights must be numbers, got {weights!r}") from exc
    if len(values) != count:
        raise ValueError(f"`weights`: {len(values)} interpolation weight(s) for {count} styles; give one per style")
    if not all(math.isfinite(w) for w in values):
        raise ValueError(f"`weights`: interpolation weights must be finite numbers, got {values}")
    if any(w < 0 for w in values):
        raise ValueError(f"`weights`: interpolation weights must not be negative, got {values}")
    largest = max(values, default=0.0)
    if largest == 0.0:
        raise ValueError(
            f"`weights`: interpolation weights {values} are all zero; give at least one style a positive weight"
        )
    scaled = [w / largest for w in values]
    total = math.fsum(scaled)
    return [w / total for w in scaled]


def _mask_tensor(m: Tensor, index: int) -> Tensor:
    """One (H, W) mask tensor: float in [0, 1] (uint8 as 0..255, bool as 0/1), finite, not empty."""
    if m.dim() == 3 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 2:
        raise ImageError(f"mask {index} must be an (H, W) tensor, got shape {tuple(m.shape)}")
    if m.numel() == 0:
        raise ImageError(f"mask {index} is empty (shape {tuple(m.shape)})")
    if m.dtype == torch.bool:
        return m.float()
    if m.dtype == torch.uint8:
        return m.float() / 255.0
    if m.is_complex() or not m.is_floating_point():
        raise ImageError(f"mask {index} must be floating point in [0, 1], uint8 or bool, got {m.dtype}")
    m = m.detach().float()
    if not torch.isfinite(m).all():
        raise ImageError(f"mask {index} has NaN or infinite values")
    if float(m.min()) < 0.0 or float(m.max()) > 1.0:
        raise ImageError(
            f"mask {index} has values from {float(m.min()):g} to {float(m.max()):g}; masks are weights in [0, 1]"
        )
    return m


def load_masks(masks, count: int, size: tuple[int, int]) -> Tensor:
    """(K, H, W) masks at the content's size, K = ``count`` styles, from paths, PIL images or
    tensors ((H, W), (1, H, W) or (K, H, W)). One mask for two styles gives foreground and
    background. Masks of another size are resized; another aspect ratio is an error."""
    if isinstance(masks, Tensor) and masks.dim() == 3 and masks.shape[0] > 1:
        items = list(masks)
    else:
        items = list(masks) if isinstance(masks, (list, tuple)) else [masks]
    if not items:
        raise ValueError("`masks` is empty: give one mask for two styles or one mask per style")
    loaded = [_mask_tensor(m, i) if isinstance(m, Tensor) else imaging.load_mask(m) for i, m in enumerate(items)]
    if len(loaded) == 1 and count == 2:
        loaded = [loaded[0], 1.0 - loaded[0]]
    if len(loaded) != count:
        raise ValueError(
            f"{len(items)} mask(s) for {count} styles: give one mask for two styles "
            f"(foreground, background) or one mask per style"
        )
    height, width = size
    out = []
    for index, m in enumerate(loaded):
        mh, mw = m.shape
        if abs(mw / mh - width / height) > 0.02 * (width / height):
            raise ImageError(
                f"mask {index} is {mw}x{mh} but the content is {width}x{height}: the "
                "aspect ratios differ, so the mask does not match this content"
            )
        if (mh, mw) != (height, width):
            m = F.interpolate(m[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
        out.append(m.clamp(0, 1))
    return torch.stack(out)
