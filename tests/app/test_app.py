"""The web app without a browser: upload checks, the handlers' answers to bad input (one clear
message, never a stack trace), the video tab, the command's start and Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio", reason="needs the [app] extra (gradio)")

from adain_cuda import app as web  # noqa: E402
from adain_cuda import cli  # noqa: E402
from adain_cuda.images import imaging  # noqa: E402

from community_layout import write_weight_files  # noqa: E402
from helpers import cpu_stylizer  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session():
    s = web._Session(cpu_stylizer(), None)
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads")
    g = torch.Generator().manual_seed(0)
    for name, (h, w) in {"content.png": (24, 32), "style.jpg": (20, 20), "tiny.png": (4, 4)}.items():
        imaging.save_image(torch.rand(3, h, w, generator=g), root / name)
    Image.new("L", (7000, 7000)).save(root / "bomb.png", optimize=True)
    (root / "notes.txt").write_text("not an image")
    (root / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


@pytest.mark.parametrize(
    "name, problem",
    [
        ("content.png", None),
        ("bomb.png", "7000x7000 pixels"),
        ("notes.txt", "not an image"),
        ("fake.png", "not an image"),
    ],
)
def test_upload_checks_read_only_the_header(images, name, problem):
    found = web.upload_problem(images / name)
    assert (found is None) if problem is None else (problem in found)


def test_large_files_are_refused_by_size(images):
    assert "MB" in web.upload_problem(images / "content.png", max_bytes=100)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(content=None), "add a content image"),
        (dict(styles=[]), "add one or more style images"),
        (dict(content="bomb.png"), "pixels"),
        (dict(styles=["notes.txt"]), "style: notes.txt is not an image"),
        (dict(weights="1, x"), "expected numbers"),
        (dict(weights="1, 2"), "2 given for 1 style"),
        (dict(content_size="big"), "content size"),
        (dict(content_size=-3), "content size"),
        (dict(style_size=99999), "style size"),
        (dict(content="tiny.png", content_size=0), "at least 9"),
        (dict(alpha=1.5), "alpha"),
    ],
)
def test_bad_stylize_input_is_one_clear_error(session, images, change, message):
    args = dict(
        content="content.png",
        styles=["style.jpg"],
        alpha=1.0,
        weights="",
        preserve_color=False,
        mask=None,
        content_size=64,
        style_size=64,
    )
    args.update(change)
    args["content"] = None if args["content"] is None else str(images / args["content"])
    args["styles"] = [str(images / s) for s in args["styles"]]
    with pytest.raises(gr.Error) as exc:
        web.stylize_image(session, **args)
    assert message in exc.value.message and "Traceback" not in exc.value.message


def test_stylize_writes_the_stylizers_pixels_as_png(session, images):
    shown, download = web.stylize_image(
        session, str(images / "content.png"), [str(images / "style.jpg")], 0.6, "", True, None, 48, 32
    )
    assert shown == download and Path(download).parent == session.folder and download.endswith(".png")
    want = session.stylizer.stylize(
        images / "content.png", [images / "style.jpg"], alpha=0.6, preserve_color=True, content_size=48, style_size=32
    )
    assert np.array_equal(np.asarray(Image.open(download)), np.asarray(imaging.to_pil(want)))


def test_without_a_stylizer_the_handlers_say_what_is_missing(images):
    s = web._Session(None, "The style networks are not available: dec.pth is not in the cache")
    try:
        with pytest.raises(gr.Error, match="not in the cache"):
            web.stylize_image(s, str(images / "content.png"), [str(images / "style.jpg")], 1.0, "", False, None, 64, 64)
        shown, _ = web.recolor_image(s, str(images / "content.png"), str(images / "style.jpg"), "lab", 1.0)
        assert Path(shown).is_file()
    finally:
        s.cleanup()
    assert not s.folder.exists()  # the app's temporary files go with it


def test_the_video_tab_stylizes_a_clip(session, images, tmp_path):
    av = pytest.importorskip("av")
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    result = web.stylize_clip(session, str(clip), [str(images / "style.jpg")], 1.0, 0)
    with av.open(result) as src:
        frames = list(src.decode(video=0))
    assert len(frames) == 4 and (frames[0].width, frames[0].height) == (32, 24)
    with pytest.raises(gr.Error, match="add a video"):
        web.stylize_clip(session, None, [str(images / "style.jpg")], 1.0, 0)
    with pytest.raises(gr.Error):
        web.stylize_clip(session, str(images / "notes.txt"), [str(images / "style.jpg")], 1.0, 0)


@pytest.mark.parametrize("value", ["0", "70000", "http"])
def test_the_command_refuses_bad_ports(value, capsys):
    assert cli.main(["app", "--port", value]) == 2
    assert "--port" in capsys.readouterr().err


def test_the_command_serves_locally_and_ctrl_c_stops_it_cleanly(tmp_path):
    vgg, dec = write_weight_files(tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=str(tmp_path))
    cmd = [sys.executable, "-m", "adain_cuda", "app", "--vgg", str(vgg), "--decoder", str(dec), "--port", "0"]
    cmd[-1] = str(_free_port())
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    line = ""
    while "serving on http://127.0.0.1:" not in line and time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
    assert "serving on http://127.0.0.1:" in line
    time.sleep(3)  # let the server come up
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert "stopped" in stdout and "Traceback" not in stderr
    assert not list(tmp_path.glob("adain-app-*"))  # its temporary folder removed


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
