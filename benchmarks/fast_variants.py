"""Which parts of the fast inference path pay off, one switch at a time.

    python benchmarks/fast_variants.py --size 1080x1920 --precision bf16 [--compile]

Random weights, the style's statistics cached (the per-frame path). Each variant is timed with
CUDA events over --iters calls after warm-up (graph capture included in the warm-up) and printed
as median ms and peak memory (allocated, warm-up included, the networks too); --compile adds the
plain pipeline and the fast one under torch.compile (slow to compile). The benchmark suite
(test_bench_stylize.py) compares the final configuration with the baselines; this script
explains where its speed comes from.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from adain_cuda.models import FastOptions

from common import random_stylizer

# name: Stylizer options and fast-path switches (fuse: bias+ReLU in the convolution epilogue;
# kernels: adain_cuda's pooling, interleave and direct first/last layers; without them, im2col:
# the first (3-channel) layer as an im2col GEMM, pool: pooling as a max-reduction; bench:
# cudnn.benchmark); the switches not named keep their defaults
EAGER = dict(fast=True, channels_last=True, cuda_graphs=False)
VARIANTS = {
    "plain (NCHW, eager)": dict(fast=False, channels_last=False, cuda_graphs=False),
    "plain channels_last": dict(fast=False, channels_last=True, cuda_graphs=False),
    "fast NCHW": dict(fast=True, channels_last=False, cuda_graphs=False),
    "fast channels_last, separate ReLU": dict(EAGER, fuse=False),
    "fast channels_last, PyTorch between the convolutions": dict(EAGER, kernels=False),
    "fast channels_last, no layer kernels, first layer by cuDNN": dict(EAGER, kernels=False, im2col=False),
    "fast channels_last, no layer kernels, max_pool2d": dict(EAGER, kernels=False, pool=False),
    "fast channels_last (all switches on)": dict(EAGER),
    "fast channels_last + graphs forced on": dict(EAGER, cuda_graphs=True),
    "default (Stylizer's own choice)": dict(),
    "default + cudnn.benchmark": dict(bench=True),
}
SWITCHES = {
    "fuse": "fuse_relu",
    "im2col": "im2col_first_layer",
    "pool": "pool_as_reduction",
    "kernels": "layer_kernels",
}


def timed(fn, iters: int) -> tuple[float, float]:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()  # before the warm-up: a CUDA graph's pool counts
    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1080x1920", help="HxW of the content")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    content = torch.rand(args.batch, 3, h, w, device="cuda")
    style = torch.rand(1, 3, 512, 512, device="cuda")
    print(
        f"== {torch.cuda.get_device_name()}, {args.batch}x{w}x{h} content, {args.precision}, torch {torch.__version__}"
    )

    def stylizer(**opts):
        return random_stylizer(precision=args.precision, **opts)

    for name, opts in VARIANTS.items():
        opts = dict(opts)
        switches = {field: opts.pop(key) for key, field in SWITCHES.items() if key in opts}
        torch.backends.cudnn.benchmark = opts.pop("bench", False)
        s = stylizer(fast_options=FastOptions(**switches), **opts)
        stats = s.encode_style(style)
        ms, peak = timed(lambda: s.transfer(content, [stats]), args.iters)
        print(f"{name:<42} {ms:8.3f} ms  {args.batch * 1000 / ms:8.1f} img/s  peak {peak:6.2f} GiB", flush=True)
        del s
    torch.backends.cudnn.benchmark = False
    if args.compile:
        for name, opts in {
            "plain, torch.compile": dict(fast=False, channels_last=False, cuda_graphs=False),
            "fast channels_last, torch.compile": dict(cuda_graphs=False),
        }.items():
            torch._dynamo.reset()
            s = stylizer(**opts)
            stats = s.encode_style(style)
            run = torch.compile(s._pipeline)
            x = content.to(s.dtype).contiguous(memory_format=s.memory_format)
            ms, peak = timed(lambda: run(x, *stats, alpha=1.0, mixing=(1.0,)), args.iters)
            print(f"{name:<42} {ms:8.3f} ms  {args.batch * 1000 / ms:8.1f} img/s  peak {peak:6.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
