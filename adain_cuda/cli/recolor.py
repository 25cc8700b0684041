"""``adain-cuda recolor``: colour transfer (AdaIN on pixel statistics), no weights needed."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..images import imaging
from ..stylize.recolor import METHODS, recolor
from .batch import Batch, Job, input_names, plan, prepare_output
from .options import add_inputs, command, gather, save_ext, unit_float
from .report import USER_ERRORS, fail

HELP = "colour transfer: each content recoloured to each style's colour statistics (no weights needed)"
EXAMPLES = """  adain-cuda recolor --content photo.jpg --style sunset.jpg
  adain-cuda recolor --content-dir photos --style-dir palettes --method covariance -o recolored
"""


def add_parser(sub) -> None:
    p = command(sub, "recolor", HELP, EXAMPLES)
    add_inputs(p)
    p.add_argument(
        "--method",
        choices=METHODS,
        default="lab",
        help="lab: per-channel mean and std in the decorrelated lαβ space, on the fused AdaIN op; "
        "covariance: mean and colour covariance in RGB",
    )
    p.add_argument("--strength", type=unit_float, default=1.0, help="0 keeps the content, 1 is full transfer")
    p.add_argument("-o", "--output", default="output", help="output folder (created)")
    p.add_argument("--save-ext", "--save_ext", type=save_ext, default="png", help="png, jpg, ...")
    p.add_argument("--overwrite", action="store_true", help="replace existing results (never inputs)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        contents, styles = gather(args.content, args.content_dir), gather(args.style, args.style_dir)
        prepare_output(args.output)
    except USER_ERRORS as exc:
        return fail(exc)
    pairs = [(c, s) for c in range(len(contents)) for s in range(len(styles))]
    c_names, s_names = input_names(contents), input_names(styles)
    outputs = plan(
        Path(args.output),
        [f"{c_names[c]}_recolored_{s_names[s]}" for c, s in pairs],
        f".{args.save_ext}",
        [*contents, *styles],
    )
    jobs = [Job(f"{contents[c].name} x {styles[s].name}", out, (c, s)) for (c, s), out in zip(pairs, outputs)]

    def write(job: Job, overwrite: bool) -> None:
        c, s = job.data
        image = recolor(contents[c], styles[s], method=args.method, strength=args.strength)
        imaging.save_image(image, job.output, overwrite=overwrite)

    report = Batch(jobs, inputs=[*contents, *styles], overwrite=args.overwrite, desc="recolouring").run(write)
    return report.summary(args.output)
