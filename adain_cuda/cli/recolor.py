"""``adain-cuda recolor``: colour transfer (AdaIN on pixel statistics), no weights needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..stylize import imaging
from ..stylize.imaging import ImageError
from ..stylize.recolor import METHODS, recolor
from .common import (
    EXIT_FAILED_ITEMS,
    EXIT_OK,
    add_inputs,
    command,
    fail,
    gather,
    output_folder,
    real,
    save_ext,
    unique_names,
    unit_float,
)

HELP = "colour transfer: each content recoloured to each style's colour statistics (no weights needed)"
EXAMPLES = """  adain-cuda recolor --content photo.jpg --style sunset.jpg
  adain-cuda recolor --content-dir photos --style-dir palettes --method covariance -o recolored
"""


def add_parser(sub) -> None:
    p = command(sub, "recolor", HELP, EXAMPLES)
    add_inputs(p)
    p.add_argument("--method", choices=METHODS, default="lab",
                   help="lab: per-channel mean and std in the decorrelated lαβ space, on the fused AdaIN op; "
                        "covariance: mean and colour covariance in RGB")
    p.add_argument("--strength", type=unit_float, default=1.0, help="0 keeps the content, 1 is full transfer")
    p.add_argument("-o", "--output", default="output", help="output folder (created)")
    p.add_argument("--save-ext", "--save_ext", type=save_ext, default="png", help="png, jpg, ...")
    p.add_argument("--overwrite", action="store_true", help="replace existing results (never inputs)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        out = output_folder(args.output)
        contents, styles = gather(args.content, args.content_dir), gather(args.style, args.style_dir)
    except (ImageError, ValueError) as exc:
        return fail(exc)
    inputs = {real(p) for p in [*contents, *styles]}
    done, failed = 0, []
    for content, c_name in zip(contents, unique_names(contents)):
        for style, s_name in zip(styles, unique_names(styles)):
            target = out / f"{c_name}_recolored_{s_name}.{args.save_ext}"
            if real(target) in inputs:
                print(f"skipped: {target} is one of the inputs; not overwritten")
                continue
            if target.exists() and not args.overwrite:
                print(f"skipped: {target} exists (use --overwrite to replace it)")
                continue
            try:
                imaging.save_image(recolor(content, style, method=args.method, strength=args.strength), target)
                done += 1
            except (ImageError, ValueError, OSError) as exc:
                failed.append(f"{Path(content).name} x {Path(style).name}: {exc}")
    print(f"{done} written to {out}, {len(failed)} failed")
    for line in failed:
        print(f"  failed: {line}", file=sys.stderr)
    return EXIT_FAILED_ITEMS if failed else EXIT_OK
