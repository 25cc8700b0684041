"""Where the time of a stylization goes: per layer and per kernel (torch.profiler).

    python benchmarks/profile_stylize.py [--size 1080x1920] [--precision bf16] [--plain]

Random weights; the style's statistics are cached, so this is the per-frame content path
(encode, AdaIN, decode). Prints the kernels by total device time and the time per network module.
Default: the Stylizer's default path without CUDA graphs (which would hide the modules);
--graphs: with a CUDA graph replayed; --plain: the plain networks in NCHW.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from common import DEVICE as device
from common import random_stylizer


def label_modules(net: torch.nn.Module, prefix: str) -> None:
    """Wraps each module's forward in a profiler range named after it."""
    for name, module in net.named_modules():
        if name and not list(module.children()):
            forward = module.forward

            def wrapped(*args, _f=forward, _n=f"{prefix}.{name}:{type(module).__name__}", **kw):
                with record_function(_n):
                    return _f(*args, **kw)

            module.forward = wrapped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1080x1920", help="HxW of the content")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--graphs", action="store_true", help="replay a CUDA graph (kernels only, no modules)")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    stylizer = random_stylizer(
        precision=args.precision,
        cuda_graphs=args.graphs,
        **(dict(fast=False, channels_last=False) if args.plain else {}),
    )
    label_modules(stylizer.encoder, "encoder")
    label_modules(stylizer.decoder, "decoder")
    content = torch.rand(1, 3, h, w, device=device)
    stats = stylizer.encode_style(torch.rand(1, 3, 512, 512, device=device))
    for _ in range(3):
        stylizer.transfer(content, [stats])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(5):
            stylizer.transfer(content, [stats])
        if device == "cuda":
            torch.cuda.synchronize()
    key = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    path = "plain" if args.plain else "default, CUDA graph" if args.graphs else "default"
    print(f"== {args.size} {args.precision} {path} path on {device}: kernels")
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows))
    print("== per module (5 calls)")
    ranges = [e for e in prof.key_averages() if e.key.startswith(("encoder.", "decoder."))]
    attr = "device_time_total" if device == "cuda" else "cpu_time_total"
    for e in sorted(ranges, key=lambda e: -getattr(e, attr, 0)):
        print(f"{e.key:<45} {getattr(e, attr, 0) / 5 / 1000:9.3f} ms")


if __name__ == "__main__":
    main()
