"""Video: frames per second for a 1920x1080 clip ($ADAIN_CUDA_BENCH_CLIP upscaled when it is set,
else a synthetic pan) with a 512x512 style, float32 and bfloat16.

  end_to_end        decode + stylize (batches, style encoded once) + encode, adain_cuda.video
  stylize_only      the batched device work alone, frames already in memory
  naive_per_frame   a frame-by-frame loop that encodes the style again for every frame
Random weights; on the CPU the clip is 256x144 and short.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from common import CUDA, SMOKE, random_stylizer, record, synchronized

av = pytest.importorskip("av")

SIZE = (1920, 1080) if CUDA else (256, 144)
FRAMES = 48 if CUDA else 6
STYLE = 512 if CUDA else 128
if SMOKE:
    SIZE, FRAMES, STYLE = (48, 32), 3, 32
CLIP = os.environ.get("ADAIN_CUDA_BENCH_CLIP")  # a real clip to upscale (optional)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """FRAMES frames at SIZE, written once per test run."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = []
    if CLIP and Path(CLIP).is_file():
        with av.open(CLIP) as src:
            for frame in src.decode(video=0):
                frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1))
                if len(frames) == FRAMES:
                    break
    else:
        base = torch.rand(3, 64, 64 + FRAMES)
        frames = [(base[:, :, i : i + 64] * 255).to(torch.uint8) for i in range(FRAMES)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for f in frames:
            big = torch.nn.functional.interpolate(f[None].float(), size=(SIZE[1], SIZE[0]), mode="bilinear")
            arr = big[0].clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_stylizer(precision):
    return random_stylizer(precision=precision)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("mode", ["end_to_end", "stylize_only", "naive_per_frame"])
def test_video(benchmark, clip, tmp_path, mode, precision):
    from adain_cuda.video import stylize_video

    benchmark.group = f"video {SIZE[0]}x{SIZE[1]} {FRAMES} frames, {STYLE}px style, {precision}"
    stylizer = make_stylizer(precision)
    style = torch.rand(1, 3, STYLE, STYLE, generator=torch.Generator().manual_seed(0))
    with av.open(str(clip)) as src:
        frames = (
            torch.stack([torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in src.decode(video=0)])
            .float()
            .div_(255)
        )
    if mode == "end_to_end":

        def run():
            return stylize_video(
                stylizer,
                clip,
                tmp_path / "out.mp4",
                style[0],
                style_size=0,
                batch_size=8,
                progress=False,
                preset="veryfast",
            )
    elif mode == "stylize_only":
        stats = stylizer.encode_style(style)

        def run():
            return [stylizer.transfer(frames[i : i + 8], [stats]).cpu() for i in range(0, len(frames), 8)]
    else:

        def run():
            return [stylizer.transfer(f[None], [stylizer.encode_style(style)]).cpu() for f in frames]

    run = synchronized(run)
    run()
    benchmark.pedantic(run, rounds=3 if CUDA else 1, iterations=1, warmup_rounds=0)
    record(benchmark, images=FRAMES, provider=mode, precision=precision, size=f"{SIZE[0]}x{SIZE[1]}")
