"""``adain-cuda info``: versions, what the binary was built for, which backends run fused kernels."""

from __future__ import annotations

import argparse
import platform

import torch

from .._version import __version__
from ..ops import _library

HELP = "versions, what the compiled extension was built for, and which backends use it"


def describe() -> str:
    lines = [
        f"adain_cuda {__version__}",
        f"python     {platform.python_version()} ({platform.machine()})",
        f"torch      {torch.__version__} (CUDA {torch.version.cuda or 'none: CPU-only build'})",
        f"binary     {_library.build_info()}",
    ]
    for device_type in ("cpu", "cuda"):
        reason = _library.fallback_reason(device_type)
        state = "fused kernels" if reason is None else f"reference fallback: {reason}"
        lines.append(f"{device_type:<10} {state}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            lines.append(
                f"gpu {i}      {props.name} (sm_{props.major}{props.minor}, {props.total_memory / 2**30:.0f} GiB)"
            )
    else:
        lines.append("gpu        none visible")
    return "\n".join(lines)


def add_parser(sub) -> None:
    from .options import command

    command(sub, "info", HELP, "  adain-cuda info\n  python -m adain_cuda info\n").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(describe())
    return 0
