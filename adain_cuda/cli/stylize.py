"""``adain-cuda stylize``: every content x style pair (or one blend per content) to image files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..images import imaging
from .batch import Batch, Job, input_names, plan, prepare_output
from .options import (
    add_inputs,
    add_network_options,
    command,
    csv_floats,
    csv_list,
    gather,
    save_ext,
    size,
    stylizer_from,
    unit_float,
)
from .report import USER_ERRORS, fail

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
    st.add_argument(
        "--style-interpolation-weights",
        "--style_interpolation_weights",
        type=csv_floats,
        help="blend all styles into one result with these weights (one per style; floats)",
    )
    st.add_argument("--preserve-color", "--preserve_color", action="store_true", help="keep the content's colors")
    st.add_argument(
        "--mask",
        type=csv_list,
        help="spatial control: one mask for two styles (foreground, background) or one mask per style",
    )
    st.add_argument(
        "--content-size", "--content_size", type=size, default=512, help="shorter side of the content (0: keep)"
    )
    st.add_argument("--style-size", "--style_size", type=size, default=512, help="shorter side of the styles (0: keep)")
    st.add_argument("--crop", action="store_true", help="center-crop contents and styles to squares")
    st.add_argument("-o", "--output", default="output", help="output folder (created)")
    st.add_argument("--save-ext", "--save_ext", type=save_ext, default="png", help="png, jpg, ... ('.png' works)")
    st.add_argument("--overwrite", action="store_true", help="replace existing results (never inputs)")
    st.add_argument("--grid", action="store_true", help="also write a contact sheet to the output folder")
    add_network_options(st)
    st.set_defaults(run=run)


SHEET = "contact_sheet"


def pair_stems(contents: list[Path], styles: list[Path]) -> list[str]:
    """The wanted names of the results, content-major: ``<content>_stylized_<style>``."""
    style_names = input_names(styles)
    return [f"{c}_stylized_{s}" for c in input_names(contents) for s in style_names]


def plan_jobs(
    args: argparse.Namespace, contents: list[Path], styles: list[Path], inputs: list[Path]
) -> tuple[list[Job], Path]:
    """One job per content x style pair (or per content for a blend), and the contact sheet's
    path, all named by the batch plan: no two share a file, none is an input."""
    combined = args.style_interpolation_weights is not None or args.mask is not None
    if combined:
        how = "masked" if args.mask is not None else "interpolated"
        styles_part = "_".join(input_names(styles))
        stems = [f"{content}_{how}_{styles_part}" for content in input_names(contents)]
        data = [(i, list(range(len(styles)))) for i in range(len(contents))]
    else:
        stems = pair_stems(contents, styles)
        data = [(i, [j]) for i in range(len(contents)) for j in range(len(styles))]
    *outputs, sheet = plan(Path(args.output), [*stems, SHEET], f".{args.save_ext}", inputs)
    labels = [f"{contents[i].name} x {', '.join(styles[j].name for j in js)}" for i, js in data]
    return [Job(label, out, d) for label, out, d in zip(labels, outputs, data)], sheet


def run(args: argparse.Namespace) -> int:
    from ..stylize import normalise_weights

    try:
        contents = gather(args.content, args.content_dir)
        styles = gather(args.style, args.style_dir)
        masks = [Path(m) for m in args.mask] if args.mask else None
        if masks is not None and args.style_interpolation_weights is not None:
            raise ValueError("use either --mask or --style-interpolation-weights, not both")
        if args.style_interpolation_weights is not None:
            normalise_weights(args.style_interpolation_weights, len(styles))
        prepare_output(args.output)
        stylizer = stylizer_from(args)
    except USER_ERRORS as exc:
        return fail(exc)

    inputs = [*contents, *styles, *(masks or [])]
    jobs, sheet_path = plan_jobs(args, contents, styles, inputs)

    def write(job: Job, overwrite: bool) -> None:
        i, js = job.data
        image = stylizer.stylize(
            contents[i],
            [styles[j] for j in js],
            alpha=args.alpha,
            weights=args.style_interpolation_weights,
            preserve_color=args.preserve_color,
            masks=masks,
            content_size=args.content_size,
            style_size=args.style_size,
            crop=args.crop,
        )
        imaging.save_image(image, job.output, overwrite=overwrite)

    report = Batch(jobs, inputs=inputs, overwrite=args.overwrite, desc="stylizing").run(write)
    if args.grid and report.present:  # also when every result was already there
        from ..images.sheet import contact_sheet

        results = {(job.data[0], job.data[1][0]): job.output for job in report.present}
        shown_styles = styles if len(jobs) == len(contents) * len(styles) else styles[:1]
        sheet = Job(f"contact sheet {sheet_path.name}", sheet_path)
        sheet_report = Batch([sheet], inputs=inputs, overwrite=args.overwrite, desc="contact sheet").run(
            lambda job, overwrite: imaging.save_pil(
                contact_sheet(contents, shown_styles, results), job.output, overwrite=overwrite
            )
        )
        if sheet_report.done:
            print(f"contact sheet: {sheet_path}")
        report.skipped += sheet_report.skipped
        report.failed += sheet_report.failed
    return report.summary(args.output)
