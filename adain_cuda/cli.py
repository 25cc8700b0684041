"""``adain-cuda``: the command line, a thin layer over the library.

    adain-cuda stylize --content c.jpg --style s.jpg [--alpha 0.8] [-o output]
    adain-cuda stylize --content-dir photos --style-dir paintings --grid
    adain-cuda grid --content-dir photos --style-dir paintings --results output -o sheet.png
    adain-cuda video clip.mp4 --style s.jpg -o out.mp4 [--temporal-smoothing 0.9]
    adain-cuda train --content-dir coco --style-dir wikiart --vgg vgg_normalised.pth
    adain-cuda weights download | list | path
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, imaging, weights
from .imaging import ImageError
from .models import WeightsError

EXIT_FAILED_ITEMS = 1
EXIT_USAGE = 2


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(v) for v in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _save_ext(text: str) -> str:
    ext = text.lower().lstrip(".")
    if "." + ext not in imaging.IMAGE_EXTENSIONS:
        raise argparse.ArgumentTypeError(f"unsupported --save-ext {text!r}; use png, jpg, bmp, tif or webp")
    return ext


def _add_network_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vgg", help="VGG weights (vgg_normalised.pth); default: the cached download")
    p.add_argument("--decoder", help="decoder weights (decoder.pth or one the trainer saved); default: "
                                     "the cached download")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    onoff = argparse.BooleanOptionalAction
    p.add_argument("--fast", action=onoff, default=None,
                   help="exact rewrites of the networks (same results; see adain_cuda.fast); default: on for CUDA")
    p.add_argument("--channels-last", action=onoff, default=None,
                   help="run the networks in channels_last; default: on for CUDA")
    p.add_argument("--cuda-graphs", action=onoff, default=None,
                   help="replay a CUDA graph for content sizes seen before (video frames); default: on for CUDA")
    p.add_argument("--no-download", action="store_true", help="never download missing weights")


def _speed_options(args: argparse.Namespace) -> dict:
    return dict(fast=args.fast, channels_last=args.channels_last, cuda_graphs=args.cuda_graphs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adain-cuda", description="Arbitrary style transfer with AdaIN.")
    parser.add_argument("--version", action="version", version=f"adain_cuda {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    st = sub.add_parser("stylize", help="stylize images (every content x style pair)")
    src = st.add_mutually_exclusive_group(required=True)
    src.add_argument("--content", type=_csv, help="content image(s), comma-separated")
    src.add_argument("--content-dir", help="folder of content images")
    sty = st.add_mutually_exclusive_group(required=True)
    sty.add_argument("--style", type=_csv, help="style image(s), comma-separated")
    sty.add_argument("--style-dir", help="folder of style images")
    st.add_argument("--alpha", type=float, default=1.0, help="content-style trade-off in [0, 1] (default 1)")
    st.add_argument("--style-interpolation-weights", type=_csv_floats,
                    help="blend all styles into one result with these weights (one per style)")
    st.add_argument("--preserve-color", action="store_true", help="keep the content's colors")
    st.add_argument("--mask", type=_csv, help="spatial control: one mask for two styles (foreground, "
                                              "background) or one mask per style")
    st.add_argument("--content-size", type=int, default=512, help="shorter side of the content (0: keep)")
    st.add_argument("--style-size", type=int, default=512, help="shorter side of the styles (0: keep)")
    st.add_argument("--crop", action="store_true", help="center-crop contents and styles to squares")
    st.add_argument("-o", "--output", default="output", help="output folder (created; default ./output)")
    st.add_argument("--save-ext", type=_save_ext, default="png", help="png (default), jpg, ... ('.png' works)")
    st.add_argument("--overwrite", action="store_true", help="replace existing results (never inputs)")
    st.add_argument("--grid", action="store_true", help="also write a contact sheet to the output folder")
    _add_network_options(st)

    gr = sub.add_parser("grid", help="contact sheet of contents, styles and their results")
    gsrc = gr.add_mutually_exclusive_group(required=True)
    gsrc.add_argument("--content", type=_csv)
    gsrc.add_argument("--content-dir")
    gsty = gr.add_mutually_exclusive_group(required=True)
    gsty.add_argument("--style", type=_csv)
    gsty.add_argument("--style-dir")
    gr.add_argument("--results", required=True, help="folder holding <content>_stylized_<style>.<ext>")
    gr.add_argument("-o", "--output", required=True, help="the sheet's file name")
    gr.add_argument("--cell", type=int, default=256, help="cell size in pixels")

    vd = sub.add_parser("video", help="stylize a video (needs PyAV: pip install 'adain_cuda[video]')")
    vd.add_argument("input", help="the video to stylize (never modified)")
    vd.add_argument("--style", type=_csv, required=True, help="style image(s), comma-separated")
    vd.add_argument("--style-interpolation-weights", type=_csv_floats, help="one weight per style")
    vd.add_argument("-o", "--output", required=True, help="the stylized video (e.g. out.mp4)")
    vd.add_argument("--alpha", type=float, default=1.0)
    vd.add_argument("--preserve-color", action="store_true", help="keep each frame's colors")
    vd.add_argument("--content-size", type=int, default=0,
                    help="shorter side the networks see (0: the source size)")
    vd.add_argument("--keep-size", action="store_true",
                    help="with --content-size: keep the processed size instead of resizing back")
    vd.add_argument("--style-size", type=int, default=512)
    vd.add_argument("--temporal-smoothing", type=float, default=0.0,
                    help="0 (off) to <1: moving average of content statistics against flicker; 0.9 is "
                         "about a ten-frame memory")
    vd.add_argument("--batch-size", type=int, default=8, help="frames per device batch")
    vd.add_argument("--codec", default="libx264", help="video codec (default libx264)")
    vd.add_argument("--crf", type=int, default=18, help="x264/x265 quality: lower is better (default 18)")
    vd.add_argument("--preset", default="medium", help="x264/x265 speed preset (default medium)")
    vd.add_argument("--skip-bad-frames", action="store_true",
                    help="replace unreadable frames by the previous one instead of stopping")
    vd.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_network_options(vd)

    tr = sub.add_parser("train", help="train a decoder (several GPUs: "
                                      "torchrun --nproc_per_node N -m adain_cuda train ...)")
    from .trainer import TrainConfig

    defaults = TrainConfig("", "")
    tr.add_argument("--content-dir", required=True, help="content images (searched recursively), e.g. MS-COCO")
    tr.add_argument("--style-dir", required=True, help="style images (searched recursively), e.g. WikiArt")
    tr.add_argument("--vgg", help="vgg_normalised.pth; without it the encoder is random (tests only)")
    tr.add_argument("-o", "--output", default=defaults.output_dir, help="run folder: checkpoints, logs, samples")
    tr.add_argument("--device", default="auto")
    for name, kind, help_ in [("lr", float, "Adam learning rate"), ("lr-decay", float, "lr / (1 + decay * i)"),
                              ("batch-size", int, "global batch size"), ("max-iter", int, "iterations"),
                              ("style-weight", float, None), ("content-weight", float, None),
                              ("image-size", int, "shorter side after resizing (0: keep)"),
                              ("crop-size", int, "random crop"), ("save-every", int, "checkpoint interval"),
                              ("log-every", int, "log interval"),
                              ("sample-every", int, "sample grid interval (0: off)"),
                              ("workers", int, "data loader workers per process"), ("seed", int, None)]:
        default = getattr(defaults, name.replace("-", "_"))
        text = f"{help_}; default {default}" if help_ else f"default {default}"
        tr.add_argument(f"--{name}", type=kind, default=default, help=text)
    tr.add_argument("--layer-weights", type=_csv_floats, help="style weight per layer relu1_1..relu4_1")
    tr.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                    help="auto: bf16 autocast on GPUs that support it, else fp32")
    tr.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto")
    tr.add_argument("--compile", action="store_true", help="torch.compile the training step")
    tr.add_argument("--losses", choices=["fused", "reference"], default="fused")
    tr.add_argument("--resume", nargs="?", const="auto",
                    help="continue from a checkpoint (default: OUTPUT/checkpoint.pt)")
    tr.add_argument("--no-tensorboard", action="store_true")

    wt = sub.add_parser("weights", help="manage the pretrained weight files")
    wsub = wt.add_subparsers(dest="action", required=True)
    dl = wsub.add_parser("download", help="download (and verify) weight files into the cache")
    dl.add_argument("which", nargs="?", default="all", choices=["all", *weights.REGISTRY])
    wsub.add_parser("list", help="the known files, their cache paths and whether they are present")
    pa = wsub.add_parser("path", help="print the cache folder, or one file's path")
    pa.add_argument("which", nargs="?", choices=list(weights.REGISTRY))
    return parser


# ------------------------------------------------------------------- stylize ----
@dataclass
class Job:
    content: int
    styles: list[int]
    output: Path


@dataclass
class Report:
    done: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _gather(files: list[str] | None, folder: str | None) -> list[Path]:
    if folder is not None:
        return imaging.list_images(folder)
    return [Path(f) for f in files]


def _plan_jobs(args, contents: list[Path], styles: list[Path]) -> list[Job]:
    out_dir, ext = Path(args.output), args.save_ext
    combined = args.style_interpolation_weights is not None or args.mask is not None
    jobs = []
    for i, content in enumerate(contents):
        if combined:
            how = "masked" if args.mask is not None else "interpolated"
            name = f"{content.stem}_{how}_{'_'.join(s.stem for s in styles)}.{ext}"
            jobs.append(Job(i, list(range(len(styles))), out_dir / name))
        else:
            jobs += [Job(i, [j], out_dir / f"{content.stem}_stylized_{style.stem}.{ext}")
                     for j, style in enumerate(styles)]
    return jobs


def run_stylize(args) -> int:
    from tqdm.auto import tqdm

    from .stylizer import Stylizer, normalise_weights

    try:
        contents = _gather(args.content, args.content_dir)
        styles = _gather(args.style, args.style_dir)
        masks = [Path(m) for m in args.mask] if args.mask else None
        if masks is not None and args.style_interpolation_weights is not None:
            raise ValueError("use either --mask or --style-interpolation-weights, not both")
        if not 0.0 <= args.alpha <= 1.0:
            raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
        if args.style_interpolation_weights is not None:
            normalise_weights(args.style_interpolation_weights, len(styles))
        stylizer = Stylizer.from_pretrained(args.vgg, args.decoder, allow_download=not args.no_download,
                                            device=args.device, precision=args.precision,
                                            **_speed_options(args))
    except (ImageError, WeightsError, ValueError) as exc:
        print(f"adain-cuda: {exc}", file=sys.stderr)
        return EXIT_USAGE

    inputs = {p.resolve() for p in [*contents, *styles, *(masks or [])]}
    report, results = Report(), {}
    jobs = _plan_jobs(args, contents, styles)
    bar = tqdm(jobs, desc="stylizing", unit="image")
    for job in bar:
        label = f"{contents[job.content].name} x {', '.join(styles[j].name for j in job.styles)}"
        if job.output.resolve() in inputs:
            report.failed.append(f"{label}: output {job.output} is one of the inputs; not overwritten")
            bar.write(f"failed: {report.failed[-1]}")
            continue
        if job.output.exists() and not args.overwrite:
            report.skipped.append(f"{job.output} exists (use --overwrite to replace it)")
            bar.write(f"skipped: {report.skipped[-1]}")
            results[(job.content, job.styles[0])] = job.output
            continue
        try:
            image = stylizer.stylize(
                contents[job.content], [styles[j] for j in job.styles], alpha=args.alpha,
                weights=args.style_interpolation_weights, preserve_color=args.preserve_color,
                masks=masks, content_size=args.content_size, style_size=args.style_size, crop=args.crop)
            imaging.save_image(image, job.output)
        except (ImageError, ValueError, RuntimeError, OSError) as exc:  # report, carry on
            report.failed.append(f"{label}: {exc}")
            bar.write(f"failed: {report.failed[-1]}")
            continue
        report.done.append(job.output)
        results[(job.content, job.styles[0])] = job.output
    bar.close()

    if args.grid and report.done:
        from .sheet import contact_sheet

        shown_styles = styles if len(jobs) == len(contents) * len(styles) else styles[:1]
        sheet_path = Path(args.output) / f"contact_sheet.{args.save_ext}"
        contact_sheet(contents, shown_styles, results).save(sheet_path)
        print(f"contact sheet: {sheet_path}")
    print(f"{len(report.done)} written to {args.output}, {len(report.skipped)} skipped, "
          f"{len(report.failed)} failed")
    for line in report.failed:
        print(f"  failed: {line}", file=sys.stderr)
    return EXIT_FAILED_ITEMS if report.failed else 0


# ---------------------------------------------------------------------- grid ----
def run_grid(args) -> int:
    from .sheet import contact_sheet

    try:
        contents = _gather(args.content, args.content_dir)
        styles = _gather(args.style, args.style_dir)
    except ImageError as exc:
        print(f"adain-cuda: {exc}", file=sys.stderr)
        return EXIT_USAGE
    results_dir, results, missing = Path(args.results), {}, 0
    for i, c in enumerate(contents):
        for j, s in enumerate(styles):
            found = sorted(results_dir.glob(f"{c.stem}_stylized_{s.stem}.*"))
            if found:
                results[(i, j)] = found[0]
            else:
                missing += 1
    out = Path(args.output)
    if out.resolve() in {p.resolve() for p in [*contents, *styles]}:
        print(f"adain-cuda: {out} is one of the inputs; choose another -o", file=sys.stderr)
        return EXIT_USAGE
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        contact_sheet(contents, styles, results, cell=args.cell).save(out)
    except (ImageError, OSError, ValueError) as exc:
        print(f"adain-cuda: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"contact sheet: {out} ({len(results)} results, {missing} missing shown grey)")
    return 0


# --------------------------------------------------------------------- video ----
def run_video(args) -> int:
    from .stylizer import Stylizer
    from .video import VideoError, stylize_video

    output = Path(args.output)
    if output.resolve() == Path(args.input).resolve():
        print(f"adain-cuda: the output {output} is the input; choose another output path", file=sys.stderr)
        return EXIT_USAGE
    if output.exists() and not args.overwrite:
        print(f"adain-cuda: {output} exists; use --overwrite to replace it", file=sys.stderr)
        return EXIT_USAGE
    try:
        stylizer = Stylizer.from_pretrained(args.vgg, args.decoder, allow_download=not args.no_download,
                                            device=args.device, precision=args.precision,
                                            **_speed_options(args))
        report = stylize_video(
            stylizer, args.input, output, [Path(s) for s in args.style],
            weights=args.style_interpolation_weights, alpha=args.alpha, preserve_color=args.preserve_color,
            content_size=args.content_size, style_size=args.style_size, resize_back=not args.keep_size,
            temporal_smoothing=args.temporal_smoothing, batch_size=args.batch_size, codec=args.codec,
            crf=args.crf, preset=args.preset, skip_bad_frames=args.skip_bad_frames)
    except (VideoError, ImageError, WeightsError, ValueError) as exc:
        print(f"adain-cuda: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{output}: {report.frames} frames, {report.width}x{report.height} at {report.fps:g} fps, "
          f"{report.frames_per_second:.1f} frames/s; flicker {report.flicker:.3f} (output frame-to-frame "
          f"change over the input's)" + (f"; {report.bad_frames} unreadable frame(s) replaced"
                                         if report.bad_frames else ""))
    return 0


# --------------------------------------------------------------------- train ----
def run_train(args) -> int:
    from .trainer import TrainConfig, Trainer

    config = TrainConfig(
        content_dir=args.content_dir, style_dir=args.style_dir, output_dir=args.output, vgg=args.vgg,
        device=args.device, lr=args.lr, lr_decay=args.lr_decay, batch_size=args.batch_size,
        max_iter=args.max_iter, style_weight=args.style_weight, content_weight=args.content_weight,
        layer_weights=args.layer_weights, image_size=args.image_size, crop_size=args.crop_size,
        save_every=args.save_every, log_every=args.log_every, sample_every=args.sample_every,
        workers=args.workers, seed=args.seed, precision=args.precision,
        channels_last={"auto": None, "on": True, "off": False}[args.channels_last], compile=args.compile,
        losses=args.losses, resume=args.resume, tensorboard=not args.no_tensorboard)
    try:
        trainer = Trainer(config)
    except (ImageError, WeightsError, ValueError, FileNotFoundError) as exc:
        print(f"adain-cuda: {exc}", file=sys.stderr)
        return EXIT_USAGE
    trainer.train()
    return 0


# ------------------------------------------------------------------- weights ----
def run_weights(args) -> int:
    if args.action == "path":
        print(weights.cache_dir() / weights.REGISTRY[args.which].filename if args.which else weights.cache_dir())
        return 0
    if args.action == "list":
        for spec in weights.REGISTRY.values():
            path = weights.cache_dir() / spec.filename
            state = "present" if path.is_file() else "missing"
            print(f"{spec.key:<8} {spec.filename:<20} {state:<8} {path}\n         {spec.description}; "
                  f"sha256 {spec.sha256}\n         {spec.url}")
        return 0
    keys = list(weights.REGISTRY) if args.which == "all" else [args.which]
    status = 0
    for key in keys:
        spec = weights.REGISTRY[key]
        dest = weights.cache_dir() / spec.filename
        if dest.is_file() and weights.sha256_of(dest) == spec.sha256:
            print(f"{spec.filename}: already present and verified at {dest}")
            continue
        try:
            print(f"{spec.filename}: saved and verified at {weights.download(spec)}")
        except WeightsError as exc:
            print(f"adain-cuda: {exc}", file=sys.stderr)
            status = EXIT_FAILED_ITEMS
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"stylize": run_stylize, "grid": run_grid, "video": run_video, "train": run_train,
               "weights": run_weights}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt as exc:
        print(f"adain-cuda: {exc or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
