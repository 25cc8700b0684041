"""Helpers shared by the benchmark modules: inputs, networks, timing wrappers, bandwidth bookkeeping."""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

import torch

# Under pytest the configuration puts the repository and tests/ on the path; the scripts in this
# folder (fast_variants.py, profile_stylize.py) run as plain programs and get them here.
_ROOT = Path(__file__).resolve().parents[1]
for _folder in (_ROOT, _ROOT / "tests"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from adain_cuda.models import Decoder, Encoder  # noqa: E402
from adain_cuda.stylize import Stylizer  # noqa: E402

from community_layout import DECODER_CONVS, VGG_CONVS, decoder_sequential, random_state, vgg_sequential  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
# `make bench-smoke` (ADAIN_CUDA_BENCH_SMOKE=1): every case once at toy sizes, to show it runs. On
# CPUs without native bfloat16 a bf16 convolution of a 256x256 map takes minutes.
SMOKE = os.environ.get("ADAIN_CUDA_BENCH_SMOKE") == "1"


@functools.cache
def random_states() -> tuple[dict, dict]:
    """VGG and decoder state dicts in the community layout with fixed random weights (trained
    weights cannot be downloaded on the benchmark machines); made once per process."""
    return random_state(VGG_CONVS, 1), random_state(DECODER_CONVS, 2)


def random_stylizer(**options) -> Stylizer:
    """A Stylizer on DEVICE with the random networks; ``options`` go to Stylizer."""
    vgg, dec = random_states()
    return Stylizer(Encoder().load_weights(vgg), Decoder().load_weights(dec), **{"device": DEVICE, **options})


def plain_networks(dtype):
    """The plain nn.Sequential encoder (to relu4_1) and decoder with the benchmark's weights."""
    vgg_state, dec_state = random_states()
    vgg = vgg_sequential()
    vgg.load_state_dict({k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < 31})
    dec = decoder_sequential()
    dec.load_state_dict(dec_state)
    return vgg.to(DEVICE, dtype).eval(), dec.to(DEVICE, dtype).eval()


def features(shape, dtype, device=DEVICE, seed=0):
    """Random feature maps with per-channel offsets and scales (never zeros)."""
    g = torch.Generator(device=device).manual_seed(seed)
    n, c = shape[:2]
    x = torch.randn(shape, generator=g, device=device, dtype=torch.float32)
    x = x * (torch.rand(1, c, 1, 1, generator=g, device=device) * 2 + 0.1)
    x = x + torch.randn(1, c, 1, 1, generator=g, device=device)
    return x.to(dtype)


def synchronized(fn):
    """Each timed call ends when the device work ends, so the numbers are device times plus
    the host dispatch a user pays."""
    if not CUDA:
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def kernel_time_ms(fn, repeats: int = 20) -> float | None:
    """Device time per call of ``fn`` on CUDA, from events around back-to-back calls (the host's
    dispatch overlaps the kernels, so this is the kernels' own time); None on the CPU."""
    if not CUDA:
        return None
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def record(
    benchmark, *, bytes_moved: int | None = None, images: int | None = None, kernel_ms: float | None = None, **info
):
    """Adds shape/dtype/provider info and, from the median, the effective bandwidth (bytes) or
    the throughput (images) to the JSON; ``kernel_ms`` (kernel_time_ms) the device time alone."""
    benchmark.extra_info.update({k: str(v) for k, v in info.items()})
    benchmark.extra_info["device"] = device_name(DEVICE)
    if kernel_ms is not None:
        benchmark.extra_info["kernel_ms"] = round(kernel_ms, 4)
        if bytes_moved is not None:
            benchmark.extra_info["kernel_GB_per_s"] = round(bytes_moved / kernel_ms / 1e6, 1)
    if benchmark.stats is None:  # --benchmark-disable: each case ran once as a smoke test, untimed
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_ms"] = round(median * 1e3, 4)
    if bytes_moved is not None:
        benchmark.extra_info["bytes"] = bytes_moved
        benchmark.extra_info["GB_per_s"] = round(bytes_moved / median / 1e9, 1)
    if images is not None:
        benchmark.extra_info["images_per_s"] = round(images / median, 2)
