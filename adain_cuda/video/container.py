"""Video containers with PyAV (FFmpeg's libraries, shipped in the wheel: no system ffmpeg).

    from adain_cuda.video import process_video
    report = process_video("in.mp4", "out.mp4", transform)   # (N, 3, H, W) frames in, out

Frames are decoded in one thread, transformed in batches in the calling thread and encoded in
another thread, so decoding, device work and encoding overlap. The output is faithful to the
input: every frame keeps its presentation time (a variable frame rate stays variable, and the
clip keeps its length), frames are turned upright by the rotation a phone records in the
container, frames whose size changes mid-stream are scaled to the first frame's size, audio is
copied through untouched. Still images are refused, the encoder's options are checked before any
decoding, and a clip that ends before its container says it does is reported as incomplete. The
result is written through the package's atomic write: an interrupted or failed run leaves
nothing under the output name. This module knows nothing of style transfer:
:mod:`adain_cuda.video.stylize` supplies the transform.
"""

from __future__ import annotations

import contextlib
import fractions
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._files import atomic_path, check_writable_folder, refuse_existing

__all__ = ["VideoError", "VideoReport", "check_encoder", "probe", "probe_size", "process_video", "require_av"]

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
    flicker: float  # mean |out_t - out_(t-1)| / mean |in_t - in_(t-1)|
    bad_frames: int = 0  # unreadable frames replaced by the previous one (skip mode)
    audio_streams: int = 0
    expected_frames: int | None = None  # what the container says it holds, where it says
    source_size: tuple[int, int] | None = None  # (width, height) of the input
    variable_frame_rate: bool = False  # the input's frame intervals vary (the output keeps them)
    rotation: int = 0  # degrees the frames were turned to stand upright
    rescaled_frames: int = 0  # frames of another size than the first, scaled to it
    decoded_seconds: float | None = None  # the time the decoded frames span
    declared_seconds: float | None = None  # the duration the container declares

    @property
    def incomplete(self) -> bool:
        """Fewer frames were decoded than the container declares, or they end well before the
        duration it declares (a file cut short)."""
        if self.expected_frames and self.frames < self.expected_frames:
            return True
        return self._ends_early()

    def _ends_early(self) -> bool:
        if self.decoded_seconds is None or not self.declared_seconds or not self.fps:
            return False
        return self.decoded_seconds + 2.0 / self.fps < self.declared_seconds

    def notes(self) -> list[str]:
        """What differs from the input, in words (empty when nothing does)."""
        out = []
        if self.expected_frames and self.frames < self.expected_frames:
            out.append(
                f"only {self.frames} of the {self.expected_frames} frames the input declares could be "
                "decoded (a damaged or truncated file?)"
            )
        elif self._ends_early():
            out.append(
                f"the decoded frames end at {self.decoded_seconds:.2f} s but the input declares "
                f"{self.declared_seconds:.2f} s (a damaged or truncated file?)"
            )
        if (
            self.source_size
            and self.source_size != (self.width, self.height)
            and all(s - o in (0, 1) for s, o in zip(self.source_size, (self.width, self.height)))
        ):
            out.append(
                f"the input is {self.source_size[0]}x{self.source_size[1]}; the output is "
                f"{self.width}x{self.height} because yuv420p video needs even sizes"
            )
        if self.variable_frame_rate:
            out.append("the input has a variable frame rate; the output keeps every frame's time")
        if self.rotation:
            out.append(
                f"the input is recorded rotated; its frames were turned {self.rotation} degrees to stand upright"
            )
        if self.rescaled_frames:
            out.append(
                f"{self.rescaled_frames} frame(s) change size mid-stream; they were scaled to "
                f"{self.source_size[0] if self.source_size else self.width}x"
                f"{self.source_size[1] if self.source_size else self.height}"
            )
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
    try:
        check_writable_folder(dst.parent if str(dst.parent) else Path("."), "the output folder")
    except OSError as exc:
        raise VideoError(str(exc)) from exc


# x264's and x265's presets; their crf runs from 0 (lossless) to 51.
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


def check_encoder(codec: str, crf: int, preset: str, size: tuple[int, int] = (64, 64)) -> None:
    """Opens the encoder with these options once, before any frame is decoded, so a bad
    `codec`, `crf` or `preset` is reported as such (not as a problem of the input file)."""
    av = require_av()
    if codec not in av.codecs_available:
        raise VideoError(f"`codec` {codec!r} is not available in this PyAV build; try libx264 or mpeg4")
    try:
        probe_codec = av.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoError(f"`codec` {codec!r} is not an encoder ({exc}); try libx264 or mpeg4") from exc
    if probe_codec.type != "video":
        raise VideoError(f"`codec` {codec!r} encodes {probe_codec.type}, not video; try libx264 or mpeg4")
    x26x = codec in ("libx264", "libx265")
    if x26x and not 0 <= int(crf) <= 51:
        raise VideoError(f"`crf` must be from 0 (lossless) to 51, got {crf}")
    if x26x and preset not in X264_PRESETS:
        raise VideoError(f"`preset` {preset!r} is not one of {', '.join(X264_PRESETS)}")
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], "yuv420p"
    ctx.time_base = fractions.Fraction(1, 25)
    if x26x:
        ctx.options = {"crf": str(crf), "preset": preset}
    try:
        ctx.open()
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoError(
            f"the encoder {codec!r} refuses these options (`crf` {crf}, `preset` {preset!r}): {exc}"
        ) from exc


def _open_video(av, src: Path):
    """The container, refusing what is no video (an unreadable file, a still image, no video stream)."""
    try:
        reader = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{src}: not a readable video ({exc})") from exc
    name = reader.format.name or ""
    if not reader.streams.video:
        reader.close()
        raise VideoError(f"{src}: no video stream")
    if name == "image2" or name.endswith("_pipe"):
        reader.close()
        raise VideoError(f"{src}: a still image ({name}), not a video; stylize it with `adain-cuda stylize`")
    return reader


def probe(src: str | Path) -> tuple[int, int, int]:
    """(width, height, rotation) of the first video stream of ``src`` as it is displayed: the
    size after turning the frames upright by the rotation the container records (degrees,
    counter-clockwise, a multiple of 90)."""
    av = require_av()
    reader = _open_video(av, Path(src))
    try:
        stream = reader.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rotation = 0
        with contextlib.suppress(av.error.FFmpegError, StopIteration):
            first = next(reader.decode(stream))  # its size, not the stream's last announced one
            width, height, rotation = first.width, first.height, _quarter_turns(first) * 90
        return (height, width, rotation) if rotation % 180 else (width, height, rotation)
    finally:
        reader.close()


def probe_size(src: str | Path) -> tuple[int, int]:
    """(width, height) of the first video stream of ``src`` as it is displayed (upright)."""
    return probe(src)[:2]


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that make ``frame`` upright (its display matrix's rotation)."""
    return int(round(getattr(frame, "rotation", 0) or 0) / 90) % 4


def process_video(
    src: str | Path,
    dst: str | Path,
    transform: Callable[[Tensor], Tensor],
    *,
    batch_size: int = 8,
    codec: str = "libx264",
    crf: int = 18,
    preset: str = "medium",
    skip_bad_frames: bool = False,
    progress: bool = True,
    output_size: tuple[int, int] | None = None,
    overwrite: bool = True,
) -> VideoReport:
    """Decodes ``src``, applies ``transform`` to batches of frames ((N, 3, H, W) float RGB in
    [0, 1] in, upright, (N, 3, H', W') out, H' x W' = ``output_size`` or the displayed size) and
    encodes the result to ``dst`` with every frame's presentation time, audio copied through.

    An unreadable frame stops the run (VideoError) unless ``skip_bad_frames``, which replaces it
    with the previous frame so the frame count and timing stay. ``overwrite=False`` never
    replaces an existing ``dst`` (:class:`~adain_cuda._files.FileExists`)."""
    av = require_av()
    src, dst = Path(src), Path(dst)
    _check_paths(src, dst)
    if batch_size < 1:
        raise VideoError(f"`batch_size` must be at least 1, got {batch_size}")
    check_encoder(codec, crf, preset)
    refuse_existing(dst, overwrite)
    shown_w, shown_h, rotation = probe(src)
    reader = _open_video(av, src)
    pipeline = None
    try:
        v_in = reader.streams.video[0]
        rate = v_in.average_rate or v_in.guessed_rate
        if not rate:
            raise VideoError(f"{src}: the video stream has no frame rate")
        width, height = output_size or (shown_w, shown_h)
        size = (width - width % 2, height - height % 2)  # yuv420p needs even sizes
        with atomic_path(dst, overwrite=overwrite) as tmp:
            try:
                writer = av.open(str(tmp), "w")
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                raise VideoError(f"cannot write {dst}: {exc}") from exc
            try:
                v_out = writer.add_stream(codec, rate=rate)
                v_out.width, v_out.height, v_out.pix_fmt = size[0], size[1], "yuv420p"
                v_out.codec_context.time_base = _output_time_base(codec, v_in.time_base)
                if codec in ("libx264", "libx265"):
                    v_out.options = {"crf": str(crf), "preset": preset}
                audio = {a.index: _copy_stream(writer, a) for a in reader.streams.audio}
                pipeline = _Pipeline(av, reader, writer, v_in, v_out, audio, size, skip_bad_frames, rotation, rate)
                expected = _declared_frames(v_in, rate)
                report = pipeline.run(transform, batch_size, expected, progress)
            except BaseException:
                with contextlib.suppress(Exception):  # keep the original error, not a close failure
                    writer.close()
                raise
            writer.close()
            if report.frames == 0:
                raise VideoError(f"{src}: no frames could be decoded")
        report.fps, report.audio_streams = float(rate), len(audio)
        report.expected_frames = expected
        report.source_size = (shown_w, shown_h)
        report.variable_frame_rate = pipeline.variable_rate()
        report.rotation = (rotation % 360) if rotation else 0
        report.rescaled_frames = pipeline.rescaled
        report.decoded_seconds, report.declared_seconds = pipeline.decoded_span(), _declared_seconds(reader, v_in)
        return report
    except BaseException as exc:
        done = pipeline.encoded if pipeline is not None else 0
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt(f"interrupted after {done} frames; nothing was written to {dst}") from exc
        if isinstance(exc, av.error.FFmpegError):
            raise VideoError(f"{src}: {exc} (after {done} frames); nothing was written to {dst}") from exc
        raise
    finally:
        reader.close()


def _output_time_base(codec: str, source: fractions.Fraction | None) -> fractions.Fraction:
    """The input's time base, so every frame keeps its time exactly; milliseconds where there is
    none or the codec cannot take it (MPEG-4 part 2 allows denominators up to 65535 only)."""
    if source is None or (codec not in ("libx264", "libx265") and source.denominator > 65535):
        return fractions.Fraction(1, 1000)
    return source


def _declared_seconds(reader, stream) -> float | None:
    """How long the container says the video lasts, or None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if reader.duration:
        return reader.duration / 1_000_000  # AV_TIME_BASE
    return None


class _Flicker:
    """Accumulates mean absolute differences of consecutive input and output frames."""

    def __init__(self) -> None:
        self.prev_in: np.ndarray | None = None
        self.prev_out: np.ndarray | None = None
        self.diff_in = self.diff_out = 0.0

    def add(self, frame_in: np.ndarray, frame_out: np.ndarray) -> None:
        a, b = frame_in.astype(np.float32), frame_out.astype(np.float32)
        if self.prev_in is not None and self.prev_out is not None:
            self.diff_in += float(np.abs(a - self.prev_in).mean())
            self.diff_out += float(np.abs(b - self.prev_out).mean())
        self.prev_in, self.prev_out = a, b

    @property
    def ratio(self) -> float:
        return self.diff_out / self.diff_in if self.diff_in > 0 else float("nan")


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
    """Decode thread -> batches on the calling thread -> encode thread, with bounded queues.
    Frames travel with their presentation times (seconds), which the encoder gives them back."""

    def __init__(self, av, reader, writer, v_in, v_out, audio, size, skip_bad, rotation, rate):
        self.av, self.reader, self.writer = av, reader, writer
        self.v_in, self.v_out, self.audio, self.size = v_in, v_out, audio, size
        self.skip_bad, self.bad, self.encoded, self.rescaled = skip_bad, 0, 0, 0
        self.turns = (rotation // 90) % 4
        self.frame_step = 1.0 / float(rate)
        self.flicker = _Flicker()  # measured in the encode thread, off the device-feeding one
        self.held_audio: list = []  # muxed after the video: audio is small
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.frame_times: list[float] = []  # presentation times of the decoded frames, seconds
        self.coded_size: tuple[int, int] | None = None  # the first frame's (width, height)

    def _array(self, frame) -> np.ndarray:
        """An upright RGB array at the first frame's size."""
        if self.coded_size is None:
            self.coded_size = (frame.width, frame.height)
        width, height = self.coded_size
        if (frame.width, frame.height) != (width, height):
            self.rescaled += 1
            array = frame.to_ndarray(format="rgb24", width=width, height=height)
        else:
            array = frame.to_ndarray(format="rgb24")
        return np.ascontiguousarray(np.rot90(array, self.turns)) if self.turns else array

    def _time(self, frame) -> float:
        if frame.pts is not None and frame.time_base is not None:
            return float(frame.pts * frame.time_base)
        return (self.frame_times[-1] + self.frame_step) if self.frame_times else 0.0

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
                    frames = [(self._array(f), self._time(f)) for f in decoded]
                except self.av.error.InvalidDataError:
                    if not self.skip_bad or last is None:
                        raise
                    self.bad += 1
                    frames = [(last[0], last[1] + self.frame_step)]
                for item in frames:
                    self.frame_times.append(item[1])
                    last = item
                    frames_q.put(item)
        except BaseException as exc:  # handed to the calling thread
            self.errors.append(exc)
        finally:
            frames_q.put(_DONE)

    def variable_rate(self) -> bool:
        """True when the decoded frames' intervals differ by more than half the typical one."""
        steps = self._steps()
        if len(steps) < 2:
            return False
        typical = sorted(steps)[len(steps) // 2]
        return max(abs(s - typical) for s in steps) > 0.5 * typical

    def _steps(self) -> list[float]:
        times = sorted(self.frame_times)
        return [b - a for a, b in zip(times, times[1:]) if b > a]

    def decoded_span(self) -> float | None:
        """From the stream's start to the end of the last decoded frame, seconds."""
        if not self.frame_times:
            return None
        steps = self._steps()
        last_step = sorted(steps)[len(steps) // 2] if steps else self.frame_step
        start = (
            float(self.v_in.start_time * self.v_in.time_base) if self.v_in.start_time and self.v_in.time_base else 0.0
        )
        return max(self.frame_times) + last_step - start

    def encode(self, out_q: queue.Queue) -> None:
        time_base = self.v_out.codec_context.time_base
        previous = None
        try:
            while (item := out_q.get()) is not _DONE:  # `is`: arrays do not compare with ==
                frame_in, array, seconds = item
                self.flicker.add(frame_in, array)
                frame = self.av.VideoFrame.from_ndarray(array, format="rgb24")
                pts = int(round(seconds / time_base))
                if previous is not None and pts <= previous:  # equal or reordered times: keep order
                    pts = previous + 1
                frame.pts, frame.time_base, previous = pts, time_base, pts
                for packet in self.v_out.encode(frame):
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
                batch: list[tuple[np.ndarray, float]] = []
                while len(batch) < batch_size:
                    item = frames_q.get()
                    if item is _DONE:
                        finished = True
                        break
                    batch.append(item)
                if not batch:
                    break
                frames = torch.from_numpy(np.stack([a for a, _ in batch])).permute(0, 3, 1, 2).float().div_(255)
                result = transform(frames)[..., :height, :width]
                out = result.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for (frame_in, seconds), frame_out in zip(batch, out):
                    out_q.put((frame_in, np.ascontiguousarray(frame_out), seconds))
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
