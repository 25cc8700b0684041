"""``adain-cuda app``: a local web page to try style transfer, built with Gradio (the ``[app]`` extra).

    from adain_cuda.app import build_app, launch
    app = build_app(stylizer)          # a gradio.Blocks: mount it, or
    launch(app)                        # serve it on 127.0.0.1:7860 (offline-safe settings)

Three tabs: Stylize (content, one or more styles, strength, interpolation weights, colour
preservation, a mask, sizes), Video and Colour transfer. The results come from the same library
calls as the command line, so the same settings give the same pixels. The page works offline: no
fonts, scripts or analytics come from the internet (system fonts, analytics off, no server-side
rendering). Stylizations run one at a time (a queue whose position the page shows); uploads are
limited in bytes and pixels; the results live in the app's own temporary folder, removed when it
stops. Without weight files the page still opens: Stylize and Video say which files are missing
and how to get them, and Colour transfer works.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .images import imaging
from .images.imaging import ImageError
from .models import WeightsError
from .stylize import Stylizer
from .stylize.recolor import METHODS, recolor

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "build_app", "launch", "upload_problem"]

MAX_UPLOAD_BYTES = 50 * 2**20  # per file
MAX_UPLOAD_PIXELS = 40_000_000  # about 8000 x 5000: beyond this a decode alone takes gigabytes
MAX_VIDEO_BYTES = 200 * 2**20
RESULT_BUTTONS = ["download", "fullscreen"]  # no "share": it would upload the result to a hub
_INSTALL = "the app needs Gradio: pip install 'adain_cuda[app]'"


def _gradio():
    # Gradio reports usage to its servers unless told not to; the page must work offline.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return gr


def theme():
    """Gradio's default look with the system's fonts (the default theme fetches Google Fonts)."""
    gr = _gradio()
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def upload_problem(path: str | Path, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS):
    """Why an uploaded image cannot be used (too large a file, too many pixels, not an image),
    from its header alone; None when it can."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        return f"{path.name} is {size / 2**20:.0f} MB; the app takes images up to {max_bytes / 2**20:.0f} MB"
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - any way a file fails to be an image
        return f"{path.name} is not an image the app can read (PNG, JPEG, WebP, BMP, TIFF, GIF)"
    if width * height > max_pixels:
        return (
            f"{path.name} has {width}x{height} pixels, more than the app takes ({max_pixels / 1e6:.0f} million); "
            "resize it first"
        )
    return None


class _Session:
    """The app's state: the stylizer (or why there is none), its temporary folder."""

    def __init__(self, stylizer: Stylizer | None, missing: str | None) -> None:
        self.stylizer, self.missing = stylizer, missing
        self.folder = Path(tempfile.mkdtemp(prefix="adain-app-"))
        atexit.register(self.cleanup)

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def output(self, suffix: str) -> Path:
        return self.folder / f"{uuid.uuid4().hex}{suffix}"

    def need_stylizer(self) -> Stylizer:
        if self.stylizer is None:
            raise _error(self.missing or "no networks loaded")
        return self.stylizer


def _error(message: str):
    return _gradio().Error(message, print_exception=False)


def _path(value: Any) -> str | None:
    """A file input's path (Gradio gives a str, or an object with .name / .path)."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return str(value)
    return getattr(value, "path", None) or getattr(value, "name", None)


def _checked_images(values: Sequence[Any] | Any, what: str) -> list[str]:
    items = values if isinstance(values, (list, tuple)) else [values]
    paths = [p for p in (_path(v) for v in items) if p]
    for path in paths:
        problem = upload_problem(path)
        if problem:
            raise _error(f"{what}: {problem}")
    return paths


def _weights(text: str, count: int) -> list[float] | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise _error(f"interpolation weights: expected numbers separated by commas, got {text!r}") from None
    if len(values) != count:
        raise _error(f"interpolation weights: {len(values)} given for {count} style images; give one per style")
    return values


def _size(value: Any, what: str) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise _error(f"{what}: expected a whole number of pixels, got {value!r}") from None
    if size < 0 or size > 4096:
        raise _error(f"{what}: must be 0 (keep the size) to 4096 pixels, got {size}")
    return size


def _user_errors():
    from .video import VideoError

    return (ImageError, WeightsError, ValueError, VideoError, OSError)


def stylize_image(session: _Session, content, styles, alpha, weights, preserve_color, mask, content_size, style_size):
    """The Stylize button: the same call as ``adain-cuda stylize``; the PNG written at full size."""
    stylizer = session.need_stylizer()
    content_paths = _checked_images(content, "content")
    style_paths = _checked_images(styles or [], "style")
    mask_paths = _checked_images(mask, "mask") if mask is not None else []
    if not content_paths:
        raise _error("add a content image first")
    if not style_paths:
        raise _error("add one or more style images")
    mixing = _weights(weights, len(style_paths))
    try:
        out = stylizer.stylize(
            content_paths[0],
            style_paths,
            alpha=float(alpha),
            weights=mixing if not mask_paths else None,
            preserve_color=bool(preserve_color),
            masks=mask_paths or None,
            content_size=_size(content_size, "content size"),
            style_size=_size(style_size, "style size"),
        )
        path = imaging.save_image(out, session.output(".png"))
    except _user_errors() as exc:
        raise _error(str(exc)) from None
    return str(path), str(path)


def stylize_clip(session: _Session, video, styles, alpha, content_size):
    """The Video tab: ``adain-cuda video`` with the audio kept, progress from its frame counter."""
    from .video import stylize_video

    stylizer = session.need_stylizer()
    source = _path(video)
    if not source:
        raise _error("add a video first")
    if Path(source).stat().st_size > MAX_VIDEO_BYTES:
        raise _error(f"the clip is larger than {MAX_VIDEO_BYTES / 2**20:.0f} MB; the app takes short clips")
    style_paths = _checked_images(styles or [], "style")
    if not style_paths:
        raise _error("add one or more style images")
    target = session.output(".mp4")
    try:
        stylize_video(
            stylizer,
            source,
            target,
            style_paths,
            alpha=float(alpha),
            content_size=_size(content_size, "content size"),
            progress=True,
        )
    except _user_errors() as exc:
        raise _error(str(exc)) from None
    return str(target)


def recolor_image(session: _Session, content, palette, method, strength):
    """The Colour transfer tab (needs no weights)."""
    content_paths = _checked_images(content, "content")
    palette_paths = _checked_images(palette, "colour source")
    if not content_paths or not palette_paths:
        raise _error("add a content image and an image to take the colours from")
    try:
        out = recolor(content_paths[0], palette_paths[0], method=str(method), strength=float(strength))
        path = imaging.save_image(out, session.output(".png"))
    except _user_errors() as exc:
        raise _error(str(exc)) from None
    return str(path), str(path)


def _load_stylizer(vgg, decoder, allow_download: bool, **options) -> tuple[Stylizer | None, str | None]:
    try:
        stylizer = Stylizer.from_pretrained(vgg, decoder, allow_download=allow_download, progress=False, **options)
        return stylizer, None
    except (WeightsError, OSError) as exc:  # missing, damaged, or a download that failed offline
        return None, f"The style networks are not available: {exc}"


def build_app(
    stylizer: Stylizer | None = None,
    *,
    vgg: str | Path | None = None,
    decoder: str | Path | None = None,
    device: str = "auto",
    precision: str = "fp32",
    allow_download: bool = False,
):
    """The app as a ``gradio.Blocks``. Without ``stylizer`` the networks are loaded from ``vgg`` /
    ``decoder`` or the weight cache (downloaded only with ``allow_download``); when they cannot
    be, the page says what is missing and offers colour transfer alone."""
    gr = _gradio()
    missing = None
    if stylizer is None:
        stylizer, missing = _load_stylizer(vgg, decoder, allow_download, device=device, precision=precision)
    session = _Session(stylizer, missing)
    # Gradio keeps uploads and results in its cache folder: inside the app's own, so that the
    # server has nothing else to serve and everything goes when the app stops.
    os.environ["GRADIO_TEMP_DIR"] = str(session.folder / "cache")
    with gr.Blocks(title="adain_cuda", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# adain_cuda: arbitrary style transfer (AdaIN)")
        gr.Markdown(f"**{missing}**" if missing else "", elem_id="missing-weights", visible=bool(missing))
        with gr.Tabs():
            with gr.Tab("Stylize", id="stylize"):
                _stylize_tab(gr, session)
            with gr.Tab("Video", id="video"):
                _video_tab(gr, session)
            with gr.Tab("Colour transfer", id="recolor"):
                _recolor_tab(gr, session)
    app.queue(default_concurrency_limit=1, max_size=32)
    app.adain_session = session
    return app


# Uploaded pictures: image_mode=None makes Gradio hand over the file as it is instead of decoding
# and converting it first, so the app's checks (bytes, pixels) see every upload before a decode.
_PICTURE = dict(type="filepath", image_mode=None)
_SOURCES = ["upload", "clipboard", "webcam"]


def _stylize_tab(gr, session: _Session) -> None:
    with gr.Row():
        with gr.Column():
            content = gr.Image(**_PICTURE, sources=_SOURCES, label="Content", elem_id="content")
            styles = gr.File(file_count="multiple", file_types=["image"], label="Style images", elem_id="styles")
            alpha = gr.Slider(0.0, 1.0, value=1.0, step=0.01, label="Strength (alpha)", elem_id="alpha")
            weights = gr.Textbox(
                label="Interpolation weights (several styles: one number per style, e.g. 1, 2)", elem_id="weights"
            )
            preserve = gr.Checkbox(label="Preserve colour", elem_id="preserve-color")
            mask = gr.Image(**_PICTURE, label="Mask (optional: white = first style)", elem_id="mask")
            with gr.Row():
                content_size = gr.Number(512, precision=0, label="Content size (0: keep)", elem_id="content-size")
                style_size = gr.Number(512, precision=0, label="Style size (0: keep)", elem_id="style-size")
            run = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
        with gr.Column():
            result = gr.Image(type="filepath", format="png", label="Result", elem_id="result", buttons=RESULT_BUTTONS)
            download = gr.File(label="Download PNG (full resolution)", elem_id="result-file")
    run.click(
        lambda *a: stylize_image(session, *a),
        [content, styles, alpha, weights, preserve, mask, content_size, style_size],
        [result, download],
        concurrency_id="device",
    )


def _video_tab(gr, session: _Session) -> None:
    with gr.Row():
        with gr.Column():
            clip = gr.Video(sources=["upload"], label="Clip", elem_id="clip")
            styles = gr.File(file_count="multiple", file_types=["image"], label="Style images", elem_id="clip-styles")
            alpha = gr.Slider(0.0, 1.0, value=1.0, step=0.01, label="Strength (alpha)")
            size = gr.Number(0, precision=0, label="Content size (0: keep)")
            run = gr.Button("Stylize video", variant="primary", elem_id="video-button")
        with gr.Column():
            result = gr.Video(label="Result", elem_id="clip-result")

    # the progress argument makes Gradio show the video pipeline's tqdm bar on the page
    def handler(video, styles, alpha, size, progress=gr.Progress(track_tqdm=True)):
        return stylize_clip(session, video, styles, alpha, size)

    run.click(handler, [clip, styles, alpha, size], result, concurrency_id="device")


def _recolor_tab(gr, session: _Session) -> None:
    with gr.Row():
        with gr.Column():
            content = gr.Image(**_PICTURE, sources=_SOURCES, label="Content", elem_id="rc-content")
            palette = gr.Image(**_PICTURE, label="Take the colours of", elem_id="rc-palette")
            method = gr.Dropdown(list(METHODS), value="lab", label="Method")
            strength = gr.Slider(0.0, 1.0, value=1.0, step=0.01, label="Strength")
            run = gr.Button("Transfer colours", variant="primary", elem_id="recolor-button")
        with gr.Column():
            result = gr.Image(
                type="filepath", format="png", label="Result", elem_id="rc-result", buttons=RESULT_BUTTONS
            )
            download = gr.File(label="Download PNG", elem_id="rc-result-file")
    run.click(lambda *a: recolor_image(session, *a), [content, palette, method, strength], [result, download])


def launch(app, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False, block: bool = True):
    """Serves ``app`` with the settings that keep the page offline-safe and the uploads bounded;
    ``share=True`` opens a public Gradio link (off by default)."""
    session = getattr(app, "adain_session", None)
    return app.launch(
        server_name=host,
        server_port=port,
        share=share,
        theme=theme(),
        ssr_mode=False,
        max_file_size=MAX_VIDEO_BYTES,
        allowed_paths=[str(session.folder)] if session is not None else None,
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=[],
        show_error=True,
    )
