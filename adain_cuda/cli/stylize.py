"""``adain-cuda stylize``: every content x style pair (or one blend per content) to image files."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..models import WeightsError
from ..stylize import imaging
from ..stylize.imaging import ImageError
from .common import (
    EXIT_FAILED_ITEMS,
    EXIT_OK,
    add_inputs,
    add_network_options,
    command,
    csv_floats,
    csv_list,
    fail,
    gather,
    output_folder,
    real,
    save_ext,
    size,
    stylizer_from,
    unique_names,
    unit_float,
)

HELP = "stylize images (every content x style pair)"
EXAMPLES = """  adain-cuda stylize --content photo.jpg --style painting.jpg
  adain-cuda stylize --content photos/*.jpg --style a.jpg b.jpg --grid -o results
  adain-cuda stylize --content-dir photos --style-dir paintings --alpha 0.8 --preserve-color
  adain-cuda stylize --content photo.jpg --style a.jpg,b.jpg --style-interpolation-weights 1,3
  adain-cuda stylize --content girl.jpg --style fg.jpg,bg.jpg --mask mask.png
"""


def add_parser(sub) -> None:
    st = command(sub, "stylize", HELP, EXAMPLES)
    add_inputs(st)
    st.add_argument("--alpha", type=unit_float, default=1.0, help="content-style trade-off in [0, 1]")
    st.add_argument("--style-interpolation-weights", "--style_interpolation_weights", type=csv_floats,
                    help="blend all styles into one result with these weights (one per style; floats)")
    st.add_argument("--preserve-color", "--preserve_color", action="store_true", help="keep the content's colors")
    st.add_argument("--mask", type=csv_list, help="spatial control: one mask for two styles (foreground, "
                                                  "background) or one mask per style")
    st.add_argument("--content-size", "--content_size", type=size, default=512,
                    help="shorter side of the content (0: keep)")
    st.add_argument("--style-size", "--style_size", type=size, default=512, help="shorter side of the styles (0: keep)")
    st.add_argument("--crop", action="store_true", help="center-crop contents and styles to squares")
    st.add_argument("-o", "--output", default="output", help="output folder (created)")
    st.add_argument("--save-ext", "--save_ext", type=save_ext, default="png", help="png, jpg, ... ('.png' works)")
    st.add_argument("--overwrite", action="store_true", help="replace existing results (never inputs)")
    st.add_argument("--grid", action="store_true", help="also write a contact sheet to the output folder")
    add_network_options(st)
    st.set_defaults(run=run)


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


def plan_jobs(args: argparse.Namespace, contents: list[Path], styles: list[Path]) -> list[Job]:
    """One job per content x style pair (or per content for a blend), each with its own output
    name: no two jobs ever write the same file."""
    out_dir, ext = Path(args.output), args.save_ext
    combined = args.style_interpolation_weights is not None or args.mask is not None
    content_names, style_names = unique_names(contents), unique_names(styles)
    jobs = []
    for i, content in enumerate(content_names):
        if combined:
            how = "masked" if args.mask is not None else "interpolated"
            name = f"{content}_{how}_{'_'.join(style_names)}.{ext}"
            jobs.append(Job(i, list(range(len(styles))), out_dir / name))
        else:
            jobs += [Job(i, [j], out_dir / f"{content}_stylized_{style}.{ext}") for j, style in enumerate(style_names)]
    return jobs


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..stylize import normalise_weights

    try:
        output_folder(args.output)
        contents = gather(args.content, args.content_dir)
        styles = gather(args.style, args.style_dir)
        masks = [Path(m) for m in args.mask] if args.mask else None
        if masks is not None and args.style_interpolation_weights is not None:
            raise ValueError("use either --mask or --style-interpolation-weights, not both")
        if args.style_interpolation_weights is not None:
            normalise_weights(args.style_interpolation_weights, len(styles))
        stylizer = stylizer_from(args)
    except (ImageError, WeightsError, ValueError) as exc:
        return fail(exc)

    inputs = {real(p) for p in [*contents, *styles, *(masks or [])]}
    report, results = Report(), {}
    jobs = plan_jobs(args, contents, styles)
    bar = tqdm(jobs, desc="stylizing", unit="image")
    for job in bar:
        label = f"{contents[job.content].name} x {', '.join(styles[j].name for j in job.styles)}"
        if real(job.output) in inputs:
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

    if args.grid and results:  # also when every result was already there
        from ..stylize.sheet import contact_sheet

        shown_styles = styles if len(jobs) == len(contents) * len(styles) else styles[:1]
        sheet_path = Path(args.output) / f"contact_sheet.{args.save_ext}"
        try:
            imaging.save_pil(contact_sheet(contents, shown_styles, results), sheet_path)
            print(f"contact sheet: {sheet_path}")
        except (ValueError, OSError) as exc:
            report.failed.append(f"contact sheet {sheet_path}: {exc}")
    print(f"{len(report.done)} written to {args.output}, {len(report.skipped)} skipped, "
          f"{len(report.failed)} failed")
    for line in report.failed:
        print(f"  failed: {line}", file=sys.stderr)
    return EXIT_FAILED_ITEMS if report.failed else EXIT_OK
