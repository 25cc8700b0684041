"""Loads the compiled extension and says, once, why the reference is used when it cannot be.

Importing the compiled ``adain_cuda._C`` registers the ``torch.ops.adain_cuda`` operators. When the
import fails (not built, missing CUDA libraries), the binary was built against another torch than
the one running (its C++ ABI is not stable across versions), or a tensor lives on a device the
binary has no kernels for, the public functions run the pure-PyTorch reference instead and warn
once per reason, pointing at the caller's line.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings

import torch

_BUILD_HELP = (
    "build it with `pip install --no-build-isolation .` (setuptools, wheel and ninja installed "
    "first) or `make build` in a clone"
)


def _load() -> str | None:
    """None when the operators are registered and usable, else why not."""
    try:
        # By module name, so that the op layer does not import the top-level package.
        importlib.import_module("adain_cuda._C")
    except ModuleNotFoundError:
        return f"the compiled extension adain_cuda._C is not built; {_BUILD_HELP}"
    except (ImportError, OSError) as exc:
        return (
            f"the compiled extension adain_cuda._C cannot be loaded ({type(exc).__name__}: {exc}); "
            f"rebuild it against this torch ({torch.__version__}): {_BUILD_HELP}"
        )
    built = re.search(r"torch (\S+)", torch.ops.adain_cuda.build_info())
    if built and built.group(1) != torch.__version__:
        return (
            f"the compiled extension was built against torch {built.group(1)} but torch "
            f"{torch.__version__} is running; rebuild it: {_BUILD_HELP}"
        )
    return None


LOAD_ERROR: str | None = _load()

_warned: set[str] = set()


def _kernel_device_types() -> frozenset[str]:
    if LOAD_ERROR is not None:
        return frozenset()
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    return frozenset(d for d, key in (("cpu", "CPU"), ("cuda", "CUDA")) if has("adain_cuda::adain", key))


# The device types ('cpu', 'cuda') the compiled kernels serve, empty when they are not loaded.
# Read once: a plain set lookup costs nothing per call and torch.compile traces it without a break.
KERNEL_DEVICE_TYPES = _kernel_device_types()


def loaded() -> bool:
    """True when the compiled operators are registered."""
    return LOAD_ERROR is None


def has_kernels_for(device_type: str) -> bool:
    """True when the binary has kernels for tensors of this device type ('cpu', 'cuda', ...)."""
    return device_type in KERNEL_DEVICE_TYPES


def build_info() -> str:
    """What the binary was compiled for, or why it is not available."""
    return torch.ops.adain_cuda.build_info() if loaded() else f"not usable ({LOAD_ERROR})"


def fallback_reason(device_type: str) -> str | None:
    """None when the compiled kernels can run on this device type, else the reason they cannot."""
    if not loaded():
        return LOAD_ERROR
    if not has_kernels_for(device_type):
        return f"the compiled extension has no kernels for '{device_type}' tensors (built as: {build_info()})"
    return None


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _caller_stacklevel() -> int:
    """The stack level of the first frame outside this package: the user's call."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        if frame.f_back is None:
            break
        frame, level = frame.f_back, level + 1
    return level


def warn_fallback(reason: str) -> None:
    if reason in _warned:
        return
    _warned.add(reason)
    warnings.warn(
        f"adain_cuda is using its pure-PyTorch reference because {reason}.",
        RuntimeWarning,
        stacklevel=_caller_stacklevel(),
    )
