"""``adain-cuda demo`` (``make demo``): the package's main job on this machine, left as pictures.

1. The fused AdaIN op against the reference: largest difference from float64 and the speed-up,
   printed and plotted (``op_speed.png``).
2. With the pretrained weights (given, cached, or downloaded on first use): a stylization sheet of
   sample contents x styles, an alpha ramp, a style interpolation, colour preservation and spatial
   control with a mask (``stylization.png``). Without them (offline) it never shows the output of
   untrained networks; it makes a real picture instead, labelled for what it is: colour transfer,
   AdaIN applied to the pixel statistics (``colour_transfer.png``, see ``adain-cuda recolor``).
3. ``index.html`` shows what was written, with captions.

The samples: photographs that ship with matplotlib, and style images drawn here.
"""

from __future__ import annotations

import argparse
import html
import statistics
import time
from pathlib import Path

import torch

from .._device import parse_device
from .._files import atomic_path, check_writable_folder
from ..models import WeightsError
from ..ops import _library, adain, reference
from .report import EXIT_OK, fail

HELP = "the fused op against the reference, then pictures and an index page in demo_output/"
EXAMPLES = """  adain-cuda demo                                    # demo_output/index.html
  adain-cuda demo --vgg vgg_normalised.pth --decoder decoder.pth --output /tmp/demo
"""
CELL = 192


def median_ms(fn, device: str, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def op_check(device: str, repeats: int) -> list[tuple[str, float, float, float]]:
    """Prints and returns (case, max error, fused ms, reference ms) per shape and dtype."""
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; binary: {_library.build_info()}")
    shapes = [(1, 512, 64, 64), (8, 512, 32, 32)]
    if device == "cuda":
        shapes.append((1, 512, 135, 240))
    print(f"{'content shape':<22}{'dtype':<10}{'max |err|':>11}{'fused ms':>10}{'ref ms':>9}{'speed-up':>10}")
    rows = []
    for shape in shapes:
        for dtype in (torch.float32, torch.bfloat16):
            gen = torch.Generator(device=device).manual_seed(0)
            content = (torch.randn(shape, generator=gen, device=device) * 1.5 + 0.5).to(dtype)
            style = (torch.randn((1, shape[1], 64, 64), generator=gen, device=device) * 0.7 - 0.2).to(dtype)
            with torch.no_grad():
                out = adain(content, style, alpha=0.8)
                exact = reference.adain(content.double(), style.double(), alpha=0.8)
                err = (out.double() - exact).abs().max().item()
                fused = median_ms(lambda: adain(content, style, alpha=0.8), device, repeats)
                ref = median_ms(lambda: reference.adain(content, style, alpha=0.8), device, repeats)
            name = f"{tuple(shape)} {str(dtype).replace('torch.', '')}"
            rows.append((name, err, fused, ref))
            print(
                f"{str(tuple(shape)):<22}{str(dtype).replace('torch.', ''):<10}{err:>11.2e}"
                f"{fused:>10.3f}{ref:>9.3f}{ref / fused:>9.1f}x"
            )
    return rows


def plot_speed(rows, device: str, path: Path) -> Path | None:
    """A bar chart of the per-call times (matplotlib, if installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [r[3] for r in rows], height=0.4, label="reference (PyTorch)", color="#bbbbbb")
    ax.barh([i - 0.2 for i in y], [r[2] for r in rows], height=0.4, label="adain_cuda (fused)", color="#d95f02")
    for i, r in enumerate(rows):
        ax.text(r[3], i + 0.2, f"  {r[3] / r[2]:.1f}x faster", va="center", fontsize=8)
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms per call (median)")
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    ax.set_title(f"AdaIN forward, alpha 0.8, on {where}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ sample images ----
def sample_images() -> tuple[list[torch.Tensor], list[str], list[torch.Tensor], list[str]]:
    """Contents: two photographs that ship with matplotlib and a shaded relief map drawn from its
    elevation sample. Styles drawn here: a terrain in a vivid colormap, a mosaic of coloured
    cells and a banded sunset."""
    import numpy as np
    from matplotlib import cbook, colormaps

    from ..images import imaging

    def sample(name):
        return cbook.get_sample_data(name, asfileobj=False)

    photo = imaging.load_image(sample("grace_hopper.jpg"))
    present = imaging.load_image(sample("Minduka_Present_Blue_Pack.png"))
    with np.load(sample("jacksboro_fault_dem.npz")) as dem:
        height = dem["elevation"].astype(np.float64)
    height = (height - height.min()) / np.ptp(height)
    gy, gx = np.gradient(height)
    shade = np.clip(0.6 + 8 * (gx - gy), 0, 1)[..., None]
    relief = torch.from_numpy(colormaps["gist_earth"](height * 0.8 + 0.1)[..., :3] * shade).permute(2, 0, 1).float()
    twilight = torch.from_numpy(colormaps["twilight_shifted"](height)[..., :3]).permute(2, 0, 1).float()
    rng = np.random.default_rng(7)
    seeds, colors = rng.uniform(0, 256, (60, 2)), rng.uniform(0, 1, (60, 3))
    yy, xx = np.mgrid[0:256, 0:256]
    nearest = ((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2).argmin(-1)
    mosaic = torch.from_numpy(colors[nearest]).permute(2, 0, 1).float()
    t = np.linspace(0, 1, 256)[:, None].repeat(256, 1)
    bands = 0.5 + 0.5 * np.sin(40 * t + 6 * np.sin(np.linspace(0, 6, 256))[None, :])
    sunset = torch.from_numpy(colormaps["inferno"](0.15 + 0.8 * t * (0.7 + 0.3 * bands))[..., :3])
    sunset = sunset.permute(2, 0, 1).float()
    return (
        [photo, present, relief.clamp(0, 1)],
        ["portrait", "present", "relief map"],
        [twilight, mosaic, sunset],
        ["twilight terrain", "mosaic", "banded sunset"],
    )


# -------------------------------------------------------------------------- sheets ----
def _tile(img: torch.Tensor, size: int):
    from PIL import Image, ImageOps

    from ..images import imaging

    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    pil = ImageOps.contain(imaging.to_pil(img), (size, size))
    canvas.paste(pil, ((size - pil.width) // 2, (size - pil.height) // 2))
    return canvas


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()


def labelled_sheet(title: str, rows: list[tuple[str, list[tuple[str, torch.Tensor | None]]]], cell: int = CELL):
    """A picture with a title and rows of captioned images: [(row label, [(caption, image)])]; an
    image None leaves its cell empty."""
    from PIL import Image, ImageDraw

    label_w, caption_h, title_h, gap = 200, 22, 40, 8
    cols = max(len(items) for _, items in rows)
    width = label_w + cols * (cell + gap) + gap
    height = title_h + len(rows) * (cell + caption_h + gap) + gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 10), title, fill=(0, 0, 0), font=_font(18))
    for r, (label, items) in enumerate(rows):
        top = title_h + r * (cell + caption_h + gap)
        draw.multiline_text((gap, top + cell // 2 - 16), label, fill=(40, 40, 40), font=_font(14))
        for c, (caption, img) in enumerate(items):
            if img is None:  # an empty column, to line items up with the rows below
                continue
            left = label_w + c * (cell + gap)
            sheet.paste(_tile(img, cell), (left, top))
            draw.text((left, top + cell + 3), caption, fill=(80, 80, 80), font=_font(12))
    return sheet


def stylization_sheet(stylizer, contents, content_names, styles, style_names, weights_used: str):
    """Contents x styles, then an alpha ramp, an interpolation, colour preservation and a mask."""
    size = dict(content_size=384, style_size=384)
    rows = [("styles", [("", None)] + [(n, s) for s, n in zip(styles, style_names)])]
    rows += [
        (
            name,
            [("content", c)]
            + [(f"x {s_name}", stylizer.stylize(c, s, **size)) for s, s_name in zip(styles, style_names)],
        )
        for c, name in zip(contents, content_names)
    ]
    portrait, first, second = contents[0], styles[0], styles[1]
    rows.append(
        (
            "alpha",
            [(f"alpha {a:g}", stylizer.stylize(portrait, first, alpha=a, **size)) for a in (0.0, 0.25, 0.5, 0.75, 1.0)],
        )
    )
    rows.append(
        (
            f"{style_names[0]} to {style_names[1]}",
            [
                (f"weights {1 - w:g}:{w:g}", stylizer.stylize(portrait, [first, second], weights=[1 - w, w], **size))
                for w in (0.0, 0.25, 0.5, 0.75, 1.0)
            ],
        )
    )
    rows.append(
        (
            "preserve colour",
            [
                (f"x {n}", stylizer.stylize(portrait, s, preserve_color=True, **size))
                for s, n in zip(styles, style_names)
            ],
        )
    )
    h, w = portrait.shape[-2:]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    mask = ((xx / 0.55) ** 2 + ((yy + 0.15) / 0.75) ** 2 < 1).float()  # an oval around the sitter
    rows.append(
        (
            "mask",
            [
                ("mask (white: style 1)", mask.expand(3, -1, -1)),
                (
                    f"{style_names[0]} / {style_names[2]}",
                    stylizer.stylize(portrait, [first, styles[2]], masks=mask, **size),
                ),
                (
                    f"{style_names[2]} / {style_names[0]}",
                    stylizer.stylize(portrait, [styles[2], first], masks=mask, **size),
                ),
            ],
        )
    )
    return labelled_sheet(f"AdaIN style transfer ({weights_used})", rows)


def colour_transfer_sheet(contents, content_names, styles, style_names):
    """Without weights: each content recoloured to each style's colour statistics."""
    from ..stylize.recolor import recolor

    rows = [("styles", [("", None)] + [(n, s) for s, n in zip(styles, style_names)])]
    for method, label in (
        ("lab", "decorrelated colours:\nmean, std (fused AdaIN)"),
        ("covariance", "RGB colours:\nmean, covariance"),
    ):
        for c, name in zip(contents, content_names):
            rows.append(
                (
                    f"{name}\n{label}",
                    [("content", c)] + [(f"x {n}", recolor(c, s, method=method)) for s, n in zip(styles, style_names)],
                )
            )
    return labelled_sheet(
        "Colour transfer: AdaIN on pixel statistics (no network; the pretrained weights were not available)", rows
    )


def write_index(out_dir: Path, items: list[tuple[str, str]], notes: list[str]) -> Path:
    """index.html: each picture with its caption."""
    body = "".join(f"<p>{html.escape(n)}</p>\n" for n in notes)
    body += "".join(
        f'<figure><img src="{html.escape(name)}" style="max-width:100%">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>\n"
        for name, caption in items
    )
    page = (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>adain_cuda demo</title></head>"
        f"<body style='font-family:sans-serif;max-width:1200px;margin:auto'>\n<h1>adain_cuda demo</h1>\n"
        f"{body}</body></html>\n"
    )
    path = out_dir / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def run_demo(args: argparse.Namespace) -> list[tuple[str, str]]:
    from ..images import imaging
    from ..stylize import Stylizer

    out_dir = check_writable_folder(args.output, "the demo's output folder (--output)")
    parse_device(args.device)
    items, notes = [], []
    rows = op_check(args.device, args.repeats)
    if plot_speed(rows, args.device, out_dir / "op_speed.png") is not None:
        items.append(
            (
                "op_speed.png",
                "The fused AdaIN op against the PyTorch reference on this machine "
                "(largest error against float64: " + ", ".join(f"{r[1]:.1e}" for r in rows) + ").",
            )
        )
    try:
        contents, content_names, styles, style_names = sample_images()
    except ImportError:
        notes.append("The sample images come with matplotlib: pip install 'adain_cuda[demo]'.")
        return _finish(out_dir, items, notes)
    try:
        stylizer = Stylizer.from_pretrained(
            args.vgg, args.decoder, allow_download=not args.no_download, device=args.device
        )
    except WeightsError as exc:
        print(
            f"\nNo stylization: the pretrained weights are not available.\n  {exc}\n  Get them with "
            "`adain-cuda weights download` (or pass --vgg/--decoder), then run the demo again.\n"
            "Meanwhile: colour transfer (AdaIN on pixel statistics), which needs no weights."
        )
        notes.append(
            f"The pretrained weights were not available ({exc}). Instead of the output of untrained "
            "networks, this page shows colour transfer: each content recoloured to each style's "
            "colour statistics, AdaIN applied to pixels. Get the weights with `adain-cuda weights "
            "download` and run the demo again for stylizations."
        )
        imaging.save_pil(
            colour_transfer_sheet(contents, content_names, styles, style_names), out_dir / "colour_transfer.png"
        )
        items.append(
            (
                "colour_transfer.png",
                "Colour transfer (adain-cuda recolor): rows 2-4 match each "
                "channel's mean and standard deviation in the decorrelated lαβ colour space with the fused "
                "AdaIN op; rows 5-7 match the mean and colour covariance in RGB.",
            )
        )
        return _finish(out_dir, items, notes)
    used = (
        "the published weights"
        if args.vgg is None and args.decoder is None
        else f"weights {Path(args.vgg or 'vgg_normalised.pth').name}, {Path(args.decoder or 'decoder.pth').name}"
    )
    imaging.save_pil(
        stylization_sheet(stylizer, contents, content_names, styles, style_names, used), out_dir / "stylization.png"
    )
    items.append(
        (
            "stylization.png",
            "Each content in each style; an alpha ramp (0 keeps the content); a "
            "style interpolation; colour preservation; spatial control with a mask.",
        )
    )
    return _finish(out_dir, items, notes)


def _finish(out_dir: Path, items, notes):
    index = write_index(out_dir, items, notes)
    print(f"\nWrote {', '.join(name for name, _ in items)} and {index.name} to {out_dir}/ (open {index})")
    return items


def add_parser(sub) -> None:
    from .options import command, positive_int

    p = command(sub, "demo", HELP, EXAMPLES)
    p.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu or cuda (default: cuda when available)",
    )
    p.add_argument("--repeats", type=positive_int, default=20, help="timed calls per case (median)")
    p.add_argument("--output", default="demo_output", help="folder for the pictures")
    p.add_argument("--vgg", help="VGG weights (default: the cached download)")
    p.add_argument("--decoder", help="decoder weights (default: the cached download)")
    p.add_argument("--no-download", action="store_true", help="never download missing weights")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        run_demo(args)
    except (ValueError, OSError) as exc:  # a bad --device, an unwritable --output, a full disk
        return fail(exc)
    return EXIT_OK
