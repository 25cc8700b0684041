"""Video containers with PyAV (FFmpeg's libraries, shipped in the wheel: no system ffmpeg).

    from adain_cuda.video import process_video
    report = process_video("in.mp4", "out.mp4", transform)   # (N, 3, H, W) frames in, out

Frames are decoded in one thread, transformed in batches in the calling thread and encoded in
another thread, so decoding, device work and encoding overlap. Frame rate, size and frame count
are kept (a variable frame rate becomes the stream's average rate); audio is copied through
untouched. The result is written to a temporary file in the output folder and renamed at the end:
an interrupted or failed run leaves nothing under the output name. This module knows nothing of
style transfer: :mod:`adain_cuda.video.stylize` supplies the transform.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["VideoError", "VideoReport", "probe_size", "process_video", "require_av"]

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
    expected_frames: int | None = None   # what the container says it holds, where it says
    source_size: tuple[int, int] | None = None  # (width, height) of the input
    variable_frame_rate: bool = False    # the input's frame intervals vary (the output is constant)

    @property
    def incomplete(self) -> bool:
        """Fewer frames were decoded than the container declares."""
        return bool(self.expected_frames) and self.frames < self.expected_frames

    def notes(self) -> list[str]:
        """What differs from the input, in words (empty when nothing does)."""
        out = []
        if self.incomplete:
            out.append(f"only {self.frames} of the {self.expected_frames} frames the input declares could be "
                       "decoded (a damaged or truncated file?)")
        if self.source_size and self.source_size != (self.width, self.height) and \
                all(s - o in (0, 1) for s, o in zip(self.source_size, (self.width, self.height))):
            out.append(f"the input is {self.source_size[0]}x{self.source_size[1]}; the output is "
                       f"{self.width}x{self.height} because yuv420p video needs even sizes")
        if self.variable_frame_rate:
            out.append(f"the input has a variable frame rate; the output plays at a constant {self.fps:g} fps "
                       "(the input's average), with the same frames")
        return out

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def require_av():
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
    av = require_av()
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
            expected = _declared_frames(v_in, rate)
            report = pipeline.run(transform, batch_size, expected, progress)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error, not a close failure
                writer.close()
            raise
        writer.close()
        if report.frames == 0:
            raise VideoError(f"{src}: no frames could be decoded")
        os.replace(tmp, dst)
        report.fps, report.audio_streams = float(rate), len(audio)
        report.expected_frames = expected
        report.source_size = (v_in.codec_context.width, v_in.codec_context.height)
        report.variable_frame_rate = pipeline.variable_rate()
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


def _declared_frames(stream, rate) -> int | None:
    """The frame count the container declares, or one from its duration; None if neither."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base and rate:
        return int(round(float(stream.duration * stream.time_base) * float(rate)))
    return None


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
        self.frame_times: list[float] = []  # presentation times of the decoded frames, seconds

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
                    decoded = packet.decode()
                    self.frame_times += [float(f.pts * f.time_base) for f in decoded
                                         if f.pts is not None and f.time_base is not None]
                    frames = [f.to_ndarray(format="rgb24") for f in decoded]
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

    def variable_rate(self) -> bool:
        """True when the decoded frames' intervals differ by more than half the typical one."""
        times = sorted(self.frame_times)
        steps = [b - a for a, b in zip(times, times[1:]) if b > a]
        if len(steps) < 2:
            return False
        typical = sorted(steps)[len(steps) // 2]
        return max(abs(s - typical) for s in steps) > 0.5 * typical

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


def probe_size(src: str | Path) -> tuple[int, int]:
    """(width, height) of the first video stream of ``src``."""
    av = require_av()
    try:
        with av.open(str(src)) as probe:
            stream = probe.streams.video[0]
            return stream.codec_context.width, stream.codec_context.height
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise VideoError(f"{src}: not a readable video ({exc})") from exc
