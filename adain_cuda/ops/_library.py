"""Loads the compiled extension and says, once, why the reference is used when it cannot be.

Importing the compiled ``adain_cuda._C`` registers the ``torch.ops.adain_cuda`` operators. When the import
fails (not built, built against another torch, missing CUDA libraries) or a tensor lives on a
device the binary has no kernels for, the public functions run the pure-PyTorch reference
instead and warn once per reason.
"""

from __future__ import annotations

import importlib
import warnings

import torch

try:
    # The import registers the operators. By module name, so that the op layer does not import
    # the top-level package (which re-exports the layers above it).
    importlib.import_module("adain_cuda._C")

    LOAD_ERROR: str | None = None
except (ImportError, OSError) as exc:  # pragma: no cover - exercised on broken installs only
    LOAD_ERROR = f"{type(exc).__name__}: {exc}"

_warned: set[str] = set()


def _kernel_device_types() -> frozenset[str]:
    if LOAD_ERROR is not None:
        return frozenset()
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    return frozenset(d for d, key in (("cpu", "CPU"), ("cuda", "CUDA")) if has("adain_cuda::adain", key))


# Read once: a plain set lookup is also what torch.compile can trace without a graph break.
_KERNEL_DEVICE_TYPES = _kernel_device_types()


def loaded() -> bool:
    """True when the compiled operators are registered."""
    return LOAD_ERROR is None


def has_kernels_for(device_type: str) -> bool:
    """True when the binary has kernels for tensors of this device type ('cpu', 'cuda', ...)."""
    return device_type in _KERNEL_DEVICE_TYPES


def build_info() -> str:
    """What the binary was compiled for, or why it is not available."""
    return torch.ops.adain_cuda.build_info() if loaded() else f"not loaded ({LOAD_ERROR})"


def fallback_reason(device_type: str) -> str | None:
    """None when the compiled kernels can run on this device type, else the reason they cannot."""
    if not loaded():
        return f"the compiled extension failed to load: {LOAD_ERROR}; reinstall adain_cuda"
    if not has_kernels_for(device_type):
        return (f"the compiled extension has no kernels for '{device_type}' tensors "
                f"(built as: {build_info()})")
    return None


def warn_fallback(reason: str) -> None:
    if reason in _warned:
        return
    _warned.add(reason)
    warnings.warn(f"adain_cuda is using its pure-PyTorch reference because {reason}.",
                  RuntimeWarning, stacklevel=3)
