"""Video stylization with PyAV (FFmpeg's libraries, shipped in the wheel: no system ffmpeg).

    from adain_cuda.video import stylize_video
    report = stylize_video(stylizer, "in.mp4", "out.mp4", ["style.jpg"], temporal_smoothing=0.9)

The style is encoded once. Frames are decoded in one thread, stylized in batches on the device in
the calling thread and encoded in another thread, so decoding, device work and encoding overlap.
Frame rate, size and frame count are kept (a variable frame rate becomes the stream's average
rate); audio is copied through untouched. The result is written to a temporary file in the output
folder and renamed at the end: an interrupted or failed run leaves nothing under the output name.

Temporal smoothing: per-frame AdaIN flickers because each frame's content statistics move when
something moves in the frame. With ``temporal_smoothing = s`` in [0, 1) the relu4_1 content mean
and std are an exponential moving average, ``stat_t = s * stat_(t-1) + (1 - s) * frame_stat_t``
(0: off, 0.9: about a ten-frame memory). The report gives the flicker measure: the mean absolute
difference between consecutive output frames over that of the input frames.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import imaging
from .imaging import ImageSource
from .ops import channel_stats
from .stylizer import normalise_weights

__all__ = ["VideoError", "VideoReport", "stylize_video", "process_video"]

_DONE = object()


class VideoError(ValueError):
    """A video input or output problem (not a video, no frames, unwritable output, ...)."""


@dataclass
class VideoReport:
    frames: int
    fps: float
    width: int
    height: int
    seconds: float
    flicker: float          # mean |out_t - out_(t-1)| / mean |in_t - in_(t-1)|
    bad_frames: int = 0     # unreadable frames replaced by the previous one (skip mode)
    audio_streams: int = 0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def _require_av():
    try:
        import av
    except ImportError as exc:
        raise VideoError("video needs PyAV: pip install 'adain_cuda[video]' (or pip install av)") from exc
    return av


def _check_paths(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise VideoError(f"{src}: no such file")
    if dst.resolve() == src.resolve():
        raise VideoError(f"the output {dst} is the input; choose another output path")
    folder = dst.parent if str(dst.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoError(f"cannot create the output folder {folder}: {exc}") from exc
    if not os.access(folder, os.W_OK):
        raise VideoError(f"the output folder {folder} is not writable")


class _Flicker:
    """Accumulates mean absolute differences of consecutive input and output frames."""

    def __init__(self) -> None:
        self.prev_in = self.prev_out = None
        self.diff_in = self.diff_out = 0.0

    def add(self, frame_in: np.ndarray, frame_out: np.ndarray) -> None:
        a, b = frame_in.astype(np.float32), frame_out.astype(np.float32)
        if self.prev_in is not None:
            self.diff_in += float(np.abs(a - self.prev_in).mean())
            self.diff_out += float(np.abs(b - self.prev_out).mean())
        self.prev_in, self.prev_out = a, b

    @property
    def ratio(self) -> float:
        return self.diff_out / self.diff_in if self.diff_in > 0 else float("nan")


def process_video(src: str | Path, dst: str | Path, transform: Callable[[Tensor], Tensor], *,
                  batch_size: int = 8, codec: str = "libx264", crf: int = 18, preset: str = "medium",
                  skip_bad_frames: bool = False, progress: bool = True,
                  output_size: tuple[int, int] | None = None) -> VideoReport:
    """Decodes ``src``, applies ``transform`` to batches of frames ((N, 3, H, W) float RGB in
    [0, 1] in, (N, 3, H', W') out, H' x W' = ``output_size`` or the source size) and encodes the
    result to ``dst``, with audio copied through.

    An unreadable frame stops the run (VideoError) unless ``skip_bad_frames``, which replaces it
    with the previous frame so the frame count and timing stay."""
    av = _require_av()
    src, dst = Path(src), Path(dst)
    _check_paths(src, dst)
    if batch_size < 1:
        raise VideoError(f"batch_size must be at least 1, got {batch_size}")
    if codec not in av.codecs_available:
        raise VideoError(f"codec {codec!r} is not available in this PyAV build; try libx264 or mpeg4")
    try:
        reader = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{src}: not a readable video ({exc})") from exc
    tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    pipeline = None
    try:
        if not reader.streams.video:
            raise VideoError(f"{src}: no video stream")
        v_in = reader.streams.video[0]
        rate = v_in.average_rate or v_in.guessed_rate
        if not rate:
            raise VideoError(f"{src}: the video stream has no frame rate")
        width, height = output_size or (v_in.codec_context.width, v_in.codec_context.height)
        size = (width - width % 2, height - height % 2)  # yuv420p needs even sizes
        try:
            writer = av.open(str(tmp), "w")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoError(f"cannot write {dst}: {exc}") from exc
        try:
            v_out = writer.add_stream(codec, rate=rate)
            v_out.width, v_out.height, v_out.pix_fmt = size[0], size[1], "yuv420p"
            if codec in ("libx264", "libx265"):
                v_out.options = {"crf": str(crf), "preset": preset}
            audio = {a.index: _copy_stream(writer, a) for a in reader.streams.audio}
            pipeline = _Pipeline(av, reader, writer, v_in, v_out, audio, size, skip_bad_frames)
            report = pipeline.run(transform, batch_size, v_in.frames or None, progress)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error, not a close failure
                writer.close()
            raise
        writer.close()
        if report.frames == 0:
            raise VideoError(f"{src}: no frames could be decoded")
        os.replace(tmp, dst)
        report.fps, report.audio_streams = float(rate), len(audio)
        return report
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # never a half-written file under any name
        done = pipeline.encoded if pipeline is not None else 0
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt(f"interrupted after {done} frames; nothing was written to {dst}") from exc
        if isinstance(exc, av.error.FFmpegError):
            raise VideoError(f"{src}: {exc} (after {done} frames); nothing was written to {dst}") from exc
        raise
    finally:
        reader.close()


def _copy_stream(writer, template):
    if hasattr(writer, "add_stream_from_template"):
        return writer.add_stream_from_template(template)
    return writer.add_stream(template=template)  # PyAV < 14


class _Pipeline:
    """Decode thread -> batches on the calling thread -> encode thread, with bounded queues."""

    def __init__(self, av, reader, writer, v_in, v_out, audio, size, skip_bad):
        self.av, self.reader, self.writer = av, reader, writer
        self.v_in, self.v_out, self.audio, self.size = v_in, v_out, audio, size
        self.skip_bad, self.bad, self.encoded = skip_bad, 0, 0
        self.flicker = _Flicker()  # measured in the encode thread, off the device-feeding one
        self.held_audio: list = []  # muxed after the video: audio is small
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def decode(self, frames_q: queue.Queue) -> None:
        last = None
        try:
            streams = [self.v_in, *(s for s in self.reader.streams.audio if s.index in self.audio)]
            for packet in self.reader.demux(*streams):
                if self.stop.is_set():
                    return
                if packet.stream.index in self.audio:
                    if packet.dts is not None:
                        self.held_audio.append(packet)
                    continue
                try:
                    frames = [f.to_ndarray(format="rgb24") for f in packet.decode()]
                except self.av.error.InvalidDataError:
                    if not self.skip_bad or last is None:
                        raise
                    self.bad += 1
                    frames = [last]
                for frame in frames:
                    last = frame
                    frames_q.put(frame)
        except BaseException as exc:  # handed to the calling thread
            self.errors.append(exc)
        finally:
            frames_q.put(_DONE)

    def encode(self, out_q: queue.Queue) -> None:
        try:
            while (item := out_q.get()) is not _DONE:  # `is`: arrays do not compare with ==
                frame_in, array = item
                self.flicker.add(frame_in, array)
                for packet in self.v_out.encode(self.av.VideoFrame.from_ndarray(array, format="rgb24")):
                    self.writer.mux(packet)
                self.encoded += 1
            for packet in self.v_out.encode():
                self.writer.mux(packet)
            for packet in self.held_audio:
                packet.stream = self.audio[packet.stream.index]
                self.writer.mux(packet)
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
            while out_q.get() is not _DONE:  # drain so the producer never blocks
                pass

    def run(self, transform, batch_size: int, total: int | None, progress: bool) -> VideoReport:
        from tqdm.auto import tqdm

        frames_q: queue.Queue = queue.Queue(maxsize=4 * batch_size)
        out_q: queue.Queue = queue.Queue(maxsize=4 * batch_size)
        decoder = threading.Thread(target=self.decode, args=(frames_q,), name="adain-decode", daemon=True)
        encoder = threading.Thread(target=self.encode, args=(out_q,), name="adain-encode", daemon=True)
        decoder.start()
        encoder.start()
        count, start = 0, time.perf_counter()
        width, height = self.size
        bar = tqdm(total=total, unit="frame", desc="stylizing video", disable=not progress)
        finished = False
        try:
            while not finished and not self.errors:
                batch = []
                while len(batch) < batch_size:
                    item = frames_q.get()
                    if item is _DONE:
                        finished = True
                        break
                    batch.append(item)
                if not batch:
                    break
                frames = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255)
                result = transform(frames)[..., :height, :width]
                out = result.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for frame_in, frame_out in zip(batch, out):
                    out_q.put((frame_in, np.ascontiguousarray(frame_out)))
                count += len(batch)
                bar.update(len(batch))
        finally:
            bar.close()
            if not finished:
                self.stop.set()
                while decoder.is_alive():  # unblock a decoder waiting on a full queue
                    try:
                        frames_q.get_nowait()
                    except queue.Empty:
                        decoder.join(0.05)
            out_q.put(_DONE)
            encoder.join()
            decoder.join()
        if self.errors:
            raise self.errors[0]
        return VideoReport(count, 0.0, width, height, time.perf_counter() - start, self.flicker.ratio, self.bad)


def stylize_video(stylizer, src: str | Path, dst: str | Path, styles: ImageSource | Sequence[ImageSource], *,
                  weights: Sequence[float] | None = None, alpha: float = 1.0, preserve_color: bool = False,
                  content_size: int = 0, style_size: int = 512, resize_back: bool = True,
                  temporal_smoothing: float = 0.0, **options) -> VideoReport:
    """Stylizes a video with a :class:`~adain_cuda.stylizer.Stylizer`. ``content_size`` (shorter
    side, 0 keeps the size) sets the resolution the networks see; the result is resized back to
    the source size unless ``resize_back`` is False (then the output has the processed size).
    ``options`` go to :func:`process_video` (batch_size, codec, crf, preset, skip_bad_frames, progress)."""
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not 0.0 <= temporal_smoothing < 1.0:
        raise VideoError(f"temporal_smoothing must be in [0, 1), got {temporal_smoothing}")
    if not 0.0 <= alpha <= 1.0:
        raise VideoError(f"alpha must be in [0, 1], got {alpha}")
    mixing = normalise_weights(weights, len(styles))
    fixed = None if preserve_color else [stylizer.style_stats(s, size=style_size) for s in styles]
    smoother = _StatSmoother(temporal_smoothing)

    def transform(frames: Tensor) -> Tensor:
        h, w = frames.shape[-2:]
        work = imaging.resize_shorter(frames, content_size)
        outs = []
        # Colors are preserved per frame: the style is recolored to each frame (and re-encoded).
        groups = [work] if fixed is not None else [f[None] for f in work]
        for group in groups:
            stats = fixed or [stylizer.style_stats(s, size=style_size, recolor_to=group[0].cpu()) for s in styles]
            if smoother.strength == 0.0:  # the fused op
                outs.append(stylizer.transfer(group, stats, alpha=alpha, weights=mixing))
            else:
                outs.append(_stylize_batch(stylizer, group, stats, mixing, alpha, smoother))
        out = torch.cat(outs)
        if resize_back and out.shape[-2:] != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return out

    if not resize_back and content_size > 0:
        return _process_resized(src, dst, transform, content_size, **options)
    return process_video(src, dst, transform, **options)


def _process_resized(src, dst, transform, content_size, **options):
    """Output at the processed size: the transform's frames are not resized back, so the
    encoder is told the processed size."""
    av = _require_av()
    try:
        with av.open(str(src)) as probe:
            stream = probe.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise VideoError(f"{src}: not a readable video ({exc})") from exc
    scale = content_size / min(w, h)
    new_w, new_h = max(2, round(w * scale)), max(2, round(h * scale))
    return process_video(src, dst, transform, output_size=(new_w, new_h), **options)


class _StatSmoother:
    """Exponential moving average of per-frame relu4_1 content statistics (strength s)."""

    def __init__(self, strength: float) -> None:
        self.strength, self.mean, self.std = strength, None, None

    def __call__(self, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
        if self.strength == 0.0:
            return mean, std
        means, stds = [], []
        for m, s in zip(mean, std):  # frames in order
            if self.mean is None:
                self.mean, self.std = m, s
            else:
                self.mean = self.strength * self.mean + (1 - self.strength) * m
                self.std = self.strength * self.std + (1 - self.strength) * s
            means.append(self.mean)
            stds.append(self.std)
        return torch.stack(means), torch.stack(stds)


@torch.no_grad()
def _stylize_batch(stylizer, frames: Tensor, stats, mixing, alpha: float, smoother: _StatSmoother) -> Tensor:
    height, width = frames.shape[-2:]
    feat = stylizer.encoder(frames.to(stylizer.device, stylizer.dtype).contiguous(memory_format=stylizer.memory_format))
    c_mean, c_std = smoother(*channel_stats(feat))
    x = feat.float()
    normalized = (x - c_mean[..., None, None]) / c_std[..., None, None]
    target = sum(w * (normalized * s.view(1, -1, 1, 1) + m.view(1, -1, 1, 1)) for w, (m, s) in zip(mixing, stats))
    target = alpha * target + (1 - alpha) * x
    return stylizer.decoder(target.to(stylizer.dtype))[:, :, :height, :width].float()
