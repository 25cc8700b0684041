"""Which device a caller means: 'auto', 'cpu', 'cuda' or 'cuda:N', checked against what this
machine and this build of torch have. A leaf, like :mod:`adain_cuda._files`: every layer uses it."""

from __future__ import annotations

import torch

__all__ = ["cpu_computes_bf16", "parse_device"]


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


def cpu_computes_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX, as oneDNN sees it).
    Without it bfloat16 convolutions are emulated and run many times slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
