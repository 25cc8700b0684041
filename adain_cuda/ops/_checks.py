"""Argument checks for the public functions; each message names the argument at fault."""

from __future__ import annotations

import torch
from torch import Tensor

# The statistics are float32: a larger eps overflows (var + eps) there and the output to NaN.
# The same bound as the C++ checks (kEpsMax in csrc/op_setup.h).
EPS_MAX = 1e30
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def feature_map(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be a 4-D (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{name} must be float32, float16, bfloat16 or float64, got {x.dtype}; "
            f"convert it first, e.g. {name}.float()"
        )
    # A plane's statistics need at least one element: a map with planes must have pixels.
    if x.shape[0] * x.shape[1] > 0 and x.shape[2] * x.shape[3] == 0:
        raise ValueError(
            f"{name} has no spatial elements (shape {tuple(x.shape)}): every (n, c) plane needs at least one element"
        )
    return x


def content_and_style(content_arg: object, style_arg: object) -> None:
    content, style = feature_map(content_arg, "content"), feature_map(style_arg, "style")
    if content.device != style.device:
        raise ValueError(f"content and style must be on the same device, got {content.device} and {style.device}")
    if content.dtype != style.dtype:
        raise ValueError(f"content and style must have the same dtype, got {content.dtype} and {style.dtype}")
    if content.shape[1] != style.shape[1]:
        raise ValueError(
            f"content and style must have the same number of channels, got {content.shape[1]} and {style.shape[1]}"
        )
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(
            f"style batch must be 1 (shared by every content) or equal to the content "
            f"batch {content.shape[0]}, got {style.shape[0]}"
        )


def style_stats(content: Tensor, stat: object, name: str) -> Tensor:
    """Accepts (N, C), (1, C) or (C,) statistics; returns them as (N or 1, C)."""
    if not isinstance(stat, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(stat).__name__}")
    n, c = content.shape[:2]
    if stat.dim() == 1:
        stat = stat.unsqueeze(0)
    if stat.dim() != 2 or stat.shape[1] != c or stat.shape[0] not in (1, n):
        raise ValueError(
            f"{name} must have shape ({n}, {c}), (1, {c}) or ({c},) to match content "
            f"{tuple(content.shape)}, got {tuple(stat.shape)}"
        )
    if not stat.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {stat.dtype}")
    if stat.device != content.device:
        raise ValueError(f"{name} must be on the content's device {content.device}, got {stat.device}")
    return stat


def scalars(alpha: float, eps: float) -> tuple[float, float]:
    alpha, eps = float(alpha), float(eps)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0 keeps the content, 1 is full style), got {alpha}")
    # Not math.isfinite: torch.compile(dynamic=True) cannot trace it (NaN fails `eps > 0`).
    if not (eps > 0.0 and eps <= EPS_MAX):
        raise ValueError(f"eps must be a positive number no larger than {EPS_MAX:g}, got {eps}")
    return alpha, eps
