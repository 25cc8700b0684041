"""Video stylization on short synthetic clips written with PyAV."""

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from adain_cuda.images import imaging  # noqa: E402
from adain_cuda.models import Decoder, Encoder  # noqa: E402
from adain_cuda.stylize import Stylizer  # noqa: E402
from adain_cuda.video import VideoError, process_video, stylize_video  # noqa: E402

from community_layout import DECODER_CONVS, VGG_CONVS, random_state, write_weight_files  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow"


def write_clip(path, frames, fps=10, audio=False):
    """Writes (N, H, W, 3) uint8 RGB frames losslessly enough to check colors (crf 0)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        stream.options = {"crf": "0"}
        a_stream = out.add_stream("aac", rate=16000) if audio else None
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if a_stream is not None:
            samples = (np.sin(np.arange(16000 * len(frames) // fps) / 10) * 0.3).astype(np.float32)
            for i in range(0, len(samples), 1024):
                chunk = samples[i : i + 1024][None]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = 16000
                for packet in a_stream.encode(frame):
                    out.mux(packet)
            for packet in a_stream.encode():
                out.mux(packet)


def read_clip(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])
        return frames, float(s.average_rate), len(c.streams.audio)


def moving_frames(n=12, h=48, w=64, seed=0):
    """A smooth random scene panning one pixel per frame (smooth, so 4:2:0 chroma keeps it)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 6, 8)).astype(np.float32))
    base = torch.nn.functional.interpolate(coarse, size=(h, w + n), mode="bicubic", align_corners=False)
    base = base.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(np.stack([base[:, i : i + w] for i in range(n)]))


@pytest.fixture(scope="module")
def stylizer():
    enc = Encoder().load_weights(random_state(VGG_CONVS, 1))
    dec = Decoder().load_weights(random_state(DECODER_CONVS, 2))
    return Stylizer(enc, dec, device="cpu")


def test_round_trip_keeps_count_rate_size_colors_and_audio(tmp_path):
    frames = moving_frames()
    frames[:, :8, :8] = (255, 0, 0)  # a red corner: R and B must not swap
    write_clip(tmp_path / "in.mp4", frames, fps=12, audio=True)
    report = process_video(tmp_path / "in.mp4", tmp_path / "out.mp4", lambda x: x, batch_size=5, crf=0, progress=False)
    out, fps, audio = read_clip(tmp_path / "out.mp4")
    assert out.shape == frames.shape and fps == 12 and audio == 1
    assert report.frames == 12 and report.audio_streams == 1
    corner = out[:, 2:6, 2:6].reshape(-1, 3).mean(0)
    assert corner[0] > 200 and corner[2] < 60, corner
    # 4:2:0 chroma and limited-range YUV cost a few levels; swapped channels would cost far more
    assert np.abs(out.astype(int) - frames.astype(int)).mean() < 10
    assert np.abs(out.astype(int) - frames[..., ::-1].astype(int)).mean() > 30
    assert report.flicker == pytest.approx(1.0, abs=0.1)


def test_stylize_video_encodes_the_style_once(tmp_path, stylizer):
    write_clip(tmp_path / "in.mp4", moving_frames(n=9, h=40, w=56))
    style = tmp_path / "style.png"
    imaging.save_image(torch.rand(3, 32, 32), style)
    before = stylizer.style_encodes
    report = stylize_video(
        stylizer, tmp_path / "in.mp4", tmp_path / "out.mp4", [style], style_size=32, batch_size=4, progress=False
    )
    assert stylizer.style_encodes == before + 1
    out, fps, _ = read_clip(tmp_path / "out.mp4")
    assert out.shape == (9, 40, 56, 3) and fps == 10 and report.frames == 9


def test_content_size_resized_back_or_kept(tmp_path, stylizer):
    write_clip(tmp_path / "in.mp4", moving_frames(n=4, h=48, w=64))
    stylize_video(
        stylizer,
        tmp_path / "in.mp4",
        tmp_path / "back.mp4",
        torch.rand(3, 24, 24),
        style_size=0,
        content_size=24,
        progress=False,
    )
    assert read_clip(tmp_path / "back.mp4")[0].shape == (4, 48, 64, 3)
    stylize_video(
        stylizer,
        tmp_path / "in.mp4",
        tmp_path / "kept.mp4",
        torch.rand(3, 24, 24),
        style_size=0,
        content_size=24,
        resize_back=False,
        progress=False,
    )
    assert read_clip(tmp_path / "kept.mp4")[0].shape == (4, 24, 32, 3)


def test_interpolation_and_preserve_color(tmp_path, stylizer):
    write_clip(tmp_path / "in.mp4", moving_frames(n=3, h=32, w=32))
    styles = [torch.rand(3, 24, 24), torch.rand(3, 24, 24)]
    report = stylize_video(
        stylizer,
        tmp_path / "in.mp4",
        tmp_path / "out.mp4",
        styles,
        weights=[1, 2],
        preserve_color=True,
        style_size=0,
        progress=False,
    )
    assert report.frames == 3


def test_temporal_smoothing_reduces_flicker(tmp_path, stylizer):
    # A still scene where one corner flashes every other frame: the flash moves every channel's
    # statistics, so per-frame AdaIN changes the whole stylized frame; smoothed statistics keep
    # the rest of it steady. (A change of the whole frame's brightness is different: per-frame
    # AdaIN normalises it away by itself.)
    scene = moving_frames(n=1, h=48, w=64)[0]
    frames = np.stack([scene] * 30)
    frames[1::2, :20, :20] = 255
    write_clip(tmp_path / "in.mp4", frames)
    style = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    flicker = {
        s: stylize_video(
            stylizer,
            tmp_path / "in.mp4",
            tmp_path / f"{s}.mp4",
            style,
            style_size=0,
            temporal_smoothing=s,
            progress=False,
        ).flicker
        for s in (0.0, 0.5, 0.9)
    }
    assert flicker[0.5] < flicker[0.0] and flicker[0.9] < flicker[0.0], flicker


def test_interruption_leaves_no_output(tmp_path):
    write_clip(tmp_path / "in.mp4", moving_frames(n=12))

    def explode(frames, calls=[0]):  # noqa: B006 (a counter kept across calls)
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return frames

    with pytest.raises(KeyboardInterrupt, match="interrupted after .* frames; nothing was written"):
        process_video(tmp_path / "in.mp4", tmp_path / "out.mp4", explode, batch_size=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_bad_inputs(tmp_path):
    identity = lambda x: x  # noqa: E731
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoError, match="not a readable video"):
        process_video(tmp_path / "notes.mp4", tmp_path / "o.mp4", identity, progress=False)
    with pytest.raises(VideoError, match="no such file"):
        process_video(tmp_path / "absent.mp4", tmp_path / "o.mp4", identity, progress=False)
    write_clip(tmp_path / "in.mp4", moving_frames(n=3))
    with pytest.raises(VideoError, match="is the input"):
        process_video(tmp_path / "in.mp4", tmp_path / "in.mp4", identity, progress=False)
    # audio only: no video stream
    with av.open(str(tmp_path / "sound.m4a"), "w") as out:
        s = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in [*s.encode(frame), *s.encode()]:
            out.mux(packet)
    with pytest.raises(VideoError, match="no video stream"):
        process_video(tmp_path / "sound.m4a", tmp_path / "o.mp4", identity, progress=False)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(VideoError, match="is a file, not a folder"):
        process_video(tmp_path / "in.mp4", tmp_path / "a_file" / "o.mp4", identity, progress=False)
    # /proc/self takes no new files from anyone, root included (a chmod'ed folder would not stop root)
    with pytest.raises(VideoError, match="not writable|cannot write"):
        process_video(tmp_path / "in.mp4", "/proc/self/o.mp4", identity, progress=False)


def test_unreadable_frame_mid_way(tmp_path):
    write_clip(tmp_path / "in.mp4", moving_frames(n=30, h=64, w=64))
    data = bytearray((tmp_path / "in.mp4").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(400)  # damage the stream's middle
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    try:
        report = process_video(
            tmp_path / "bad.mp4", tmp_path / "o.mp4", lambda x: x, progress=False, skip_bad_frames=True
        )
    except VideoError as exc:  # the damage may also be fatal for the demuxer: then a clear error
        assert "bad.mp4" in str(exc)
        assert not (tmp_path / "o.mp4").exists()
    else:
        assert report.frames == 30 and report.bad_frames >= 1 and (tmp_path / "o.mp4").exists()
        with pytest.raises(VideoError, match="nothing was written"):  # the default: stop
            process_video(tmp_path / "bad.mp4", tmp_path / "o2.mp4", lambda x: x, progress=False)
        assert not (tmp_path / "o2.mp4").exists()


def test_cli_video(tmp_path, capsys):
    from adain_cuda import cli

    write_weight_files(tmp_path, 1, 2)
    write_clip(tmp_path / "in.mp4", moving_frames(n=5, h=32, w=48), audio=True)
    imaging.save_image(torch.rand(3, 24, 24), tmp_path / "s.png")
    args = [
        "video",
        str(tmp_path / "in.mp4"),
        "--style",
        str(tmp_path / "s.png"),
        "-o",
        str(tmp_path / "out.mp4"),
        "--vgg",
        str(tmp_path / "vgg.pth"),
        "--decoder",
        str(tmp_path / "dec.pth"),
        "--device",
        "cpu",
        "--style-size",
        "0",
        "--temporal-smoothing",
        "0.5",
    ]
    assert cli.main(args) == 0
    assert "5 frames, 48x32 at 10 fps" in capsys.readouterr().out
    assert read_clip(tmp_path / "out.mp4")[2] == 1  # audio kept
    assert cli.main(args) == 2  # exists: not overwritten
    assert "use --overwrite" in capsys.readouterr().err
    assert cli.main([*args[:5], str(tmp_path / "in.mp4"), *args[6:]]) == 2
    assert "is the input" in capsys.readouterr().err


def test_zero_frames(tmp_path):
    with av.open(str(tmp_path / "empty.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        out.start_encoding()  # a header with the stream, then no frames at all
    assert (tmp_path / "empty.mp4").stat().st_size > 0
    with pytest.raises(VideoError, match="no frames|not a readable video|no video stream"):
        process_video(tmp_path / "empty.mp4", tmp_path / "o.mp4", lambda x: x, progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_smoothing_is_the_stated_moving_average():
    from adain_cuda.video.stylize import _StatSmoother

    smooth = _StatSmoother(0.75)
    means = torch.tensor([[0.0], [4.0], [8.0]])
    out_mean, out_std = smooth(means, means + 1)
    # stat_t = s * stat_(t-1) + (1 - s) * frame_stat_t: 0, 0.75*0 + 0.25*4 = 1, 0.75*1 + 0.25*8 = 2.75
    torch.testing.assert_close(out_mean, torch.tensor([[0.0], [1.0], [2.75]]))
    torch.testing.assert_close(out_std, torch.tensor([[1.0], [2.0], [3.75]]))
    more, _ = smooth(torch.tensor([[12.0]]), torch.tensor([[1.0]]))  # the state carries over batches
    torch.testing.assert_close(more, torch.tensor([[0.75 * 2.75 + 0.25 * 12.0]]))


def test_audio_is_copied_unchanged(tmp_path):
    write_clip(tmp_path / "in.mp4", moving_frames(n=10), fps=10, audio=True)
    process_video(tmp_path / "in.mp4", tmp_path / "out.mp4", lambda x: x, progress=False)

    def packets(path):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]

    assert packets(tmp_path / "out.mp4") == packets(tmp_path / "in.mp4")


def test_odd_sizes_and_missing_frames_are_reported(tmp_path, capsys):
    frames = moving_frames(n=6, h=33, w=41)
    write_clip(tmp_path / "odd.mp4", frames, fps=6)
    report = process_video(tmp_path / "odd.mp4", tmp_path / "out.mp4", lambda x: x, progress=False)
    assert (report.width, report.height) == (40, 32) and report.source_size == (41, 33)
    assert any("even sizes" in note for note in report.notes())
    report.expected_frames = 30  # what a damaged container would declare
    assert any("only 6 of the 30 frames" in note for note in report.notes())


def test_kept_size_follows_the_image_geometry(tmp_path, stylizer):
    """The processed size is the one the frames are resized to (the longer side truncated, as
    for images), so a size where rounding would differ encodes cleanly."""
    write_clip(tmp_path / "in.mp4", moving_frames(n=3, h=45, w=67))  # 24 * 67 / 45 = 35.7
    report = stylize_video(
        stylizer,
        tmp_path / "in.mp4",
        tmp_path / "kept.mp4",
        torch.rand(3, 24, 24),
        style_size=0,
        content_size=24,
        resize_back=False,
        progress=False,
    )
    assert read_clip(tmp_path / "kept.mp4")[0].shape == (3, 24, 34, 3)  # 24 x 35, even for yuv420p
    assert (report.width, report.height) == (34, 24)


# ---- clips shaped like a phone's: rotation, variable frame rate, AAC audio, size changes, damage ----


def _patch_rotation(path, degrees_clockwise):
    """Writes the display matrix of an MP4's track header as a phone does for a rotated recording."""
    import struct

    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    version = data[i + 4]
    offset = i + 8 + (32 if version == 1 else 20) + 8 + 8
    one = 1 << 16
    cos, sin = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees_clockwise]
    matrix = [cos * one, sin * one, 0, -sin * one, cos * one, 0, 0, 0, 1 << 30]
    data[offset : offset + 36] = b"".join(struct.pack(">i", v) for v in matrix)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_rotated_recording_comes_out_upright(degrees, tmp_path):
    frames = moving_frames(n=6, h=32, w=48)
    frames[:, :8, :8] = (255, 0, 0)  # a red corner at the stored frame's top left
    write_clip(tmp_path / "phone.mp4", frames, fps=10, audio=True)
    _patch_rotation(tmp_path / "phone.mp4", degrees)
    report = process_video(tmp_path / "phone.mp4", tmp_path / "out.mp4", lambda x: x, progress=False, crf=0)
    out, _, audio = read_clip(tmp_path / "out.mp4")
    turned = np.rot90(frames[0], k=-degrees // 90)  # as a player shows the input
    assert out.shape[1:3] == turned.shape[:2] and audio == 1
    assert np.abs(out[0].astype(int) - turned.astype(int)).mean() < 12
    assert report.rotation and any("rotated" in note for note in report.notes())


def write_timed_clip(path, frames, times, container_options=None):
    """Frames at the given presentation times (seconds): a variable frame rate."""
    import fractions

    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for frame, t in zip(frames, times):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = int(t * 1000), fractions.Fraction(1, 1000)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def frame_times(path):
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(c.streams.video[0])]


@pytest.mark.parametrize(
    "times",
    [
        [0.0, 0.033, 0.066, 0.5, 0.533, 1.5, 1.533, 3.0],  # bursts and pauses
        [0.0, 0.1, 0.15, 0.2, 1.0, 1.01, 1.02, 1.03, 1.04, 2.0],  # a slow-motion stretch
    ],
)
def test_a_variable_frame_rate_keeps_every_frame_time(times, tmp_path):
    frames = moving_frames(n=len(times), h=32, w=48)
    write_timed_clip(tmp_path / "vfr.mp4", frames, times)
    source = frame_times(tmp_path / "vfr.mp4")
    report = process_video(tmp_path / "vfr.mp4", tmp_path / "out.mp4", lambda x: x, progress=False)
    assert report.frames == len(times) and report.variable_frame_rate
    assert frame_times(tmp_path / "out.mp4") == pytest.approx(source, abs=2e-3)


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_a_clip_cut_short_is_reported_incomplete(container, tmp_path, stylizer, capsys):

    frames = np.random.default_rng(0).integers(0, 256, (30, 48, 64, 3), dtype=np.uint8)  # large packets
    options = {"movflags": "faststart"} if container == "mp4" else {}
    write_timed_clip(tmp_path / f"full.{container}", frames, [i / 10 for i in range(30)], options)
    data = (tmp_path / f"full.{container}").read_bytes()
    (tmp_path / f"cut.{container}").write_bytes(data[: len(data) // 2])
    try:
        report = process_video(
            tmp_path / f"cut.{container}", tmp_path / "out.mp4", lambda x: x, progress=False, skip_bad_frames=True
        )
    except VideoError as exc:  # a cut that breaks a frame: refused as damaged, nothing written
        assert "nothing was written" in str(exc)
        return
    assert report.frames < 30 and report.incomplete
    assert any("truncated" in note for note in report.notes())


def test_a_size_change_mid_stream_is_scaled_to_the_first_size(tmp_path):
    parts = []
    for i, (h, w) in enumerate([(32, 48), (48, 64)]):
        part = tmp_path / f"part{i}.ts"
        write_clip(part, moving_frames(n=5, h=h, w=w, seed=i), fps=10)
        parts.append(part.read_bytes())
    (tmp_path / "joined.ts").write_bytes(b"".join(parts))
    report = process_video(tmp_path / "joined.ts", tmp_path / "out.mp4", lambda x: x, progress=False)
    out, _, _ = read_clip(tmp_path / "out.mp4")
    assert out.shape[1:3] == (32, 48) and report.frames >= 6
    assert report.rescaled_frames >= 1 and any("change size" in note for note in report.notes())


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "webp"])
def test_a_still_image_is_not_a_video(ext, tmp_path):
    imaging.save_image(torch.rand(3, 32, 48), tmp_path / f"still.{ext}")
    with pytest.raises(VideoError, match="still image"):
        process_video(tmp_path / f"still.{ext}", tmp_path / "out.mp4", lambda x: x, progress=False)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    "options, words",
    [
        ({"crf": 99}, "crf"),
        ({"crf": -1}, "crf"),
        ({"preset": "bogus"}, "preset"),
        ({"codec": "aac"}, "codec"),
        ({"codec": "no-such-codec"}, "codec"),
    ],
)
def test_encoder_options_are_checked_before_decoding_and_blame_themselves(options, words, tmp_path, monkeypatch):
    from adain_cuda.video import container

    write_clip(tmp_path / "in.mp4", moving_frames(n=3), fps=10)
    monkeypatch.setattr(container, "_Pipeline", lambda *a, **k: pytest.fail("decoding started"))
    with pytest.raises(VideoError, match=words) as info:
        process_video(tmp_path / "in.mp4", tmp_path / "out.mp4", lambda x: x, progress=False, **options)
    assert "in.mp4" not in str(info.value)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--crf", "99"], "--crf"),
        (["--preset", "bogus"], "--preset"),
        (["--codec", "aac"], "--codec"),
    ],
)
def test_the_cli_names_the_bad_encoder_option_before_loading_weights(extra, words, tmp_path, capsys, monkeypatch):
    from adain_cuda import cli
    from adain_cuda.cli import options

    write_clip(tmp_path / "in.mp4", moving_frames(n=3), fps=10)
    monkeypatch.setattr(options, "stylizer_from", lambda args: pytest.fail("weights loaded first"))
    code = cli.main(
        ["video", str(tmp_path / "in.mp4"), "--style", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"), *extra]
    )
    assert code == 2 and words in capsys.readouterr().err


def test_memory_is_checked_before_the_first_frame(tmp_path, stylizer, monkeypatch):
    import adain_cuda.stylize.stylizer as module

    write_clip(tmp_path / "in.mp4", moving_frames(n=4), fps=10)
    imaging.save_image(torch.rand(3, 32, 32), tmp_path / "s.png")
    monkeypatch.setattr(module, "_available_memory", lambda device: 2**20)
    with pytest.raises(imaging.ImageError, match="need"):
        stylize_video(stylizer, tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "s.png", progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_two_runs_never_share_a_temporary_file(tmp_path):
    from adain_cuda._files import temporary_name

    names = {temporary_name(tmp_path / "out.mp4") for _ in range(100)}
    assert len(names) == 100 and all(n.suffix == ".mp4" for n in names)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_a_fine_time_base_suits_every_codec(codec, tmp_path):
    """MPEG-TS counts in 1/90000 s, which MPEG-4 part 2 cannot take: the frame times still hold."""
    write_clip(tmp_path / "in.ts", moving_frames(n=6), fps=10)
    report = process_video(tmp_path / "in.ts", tmp_path / "out.mp4", lambda x: x, progress=False, codec=codec)
    assert report.frames == 6
    times = frame_times(tmp_path / "out.mp4")
    assert len(times) == 6 and times[-1] - times[0] == pytest.approx(0.5, abs=0.01)
