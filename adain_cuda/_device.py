"""Which device a caller means: 'auto', 'cpu', 'cuda' or 'cuda:N', checked against what this
machine and this build of torch have. A leaf, like :mod:`adain_cuda._files`: every layer uses it."""

from __future__ import annotations

import torch

__all__ = ["parse_device"]


def parse_device(device: str | torch.device | None, name: str = "device") -> torch.device:
    """'auto' (or None): CUDA when available, else the CPU. Unknown or absent devices are a
    ValueError naming the parameter ``name``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown `{name}` {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this build of torch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"`{name}` {str(device)!r} asked for, but {why}; use `{name}` 'cpu' (or 'auto')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"`{name}` {str(device)!r} does not exist: {torch.cuda.device_count()} GPU(s) visible")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported `{name}` {str(device)!r}: use 'cpu' or 'cuda'")
    return dev
