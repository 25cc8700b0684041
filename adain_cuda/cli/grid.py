"""``adain-cuda grid``: a contact sheet of contents, styles and the results already written."""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from ..stylize import imaging
from ..stylize.imaging import ImageError
from .common import EXIT_OK, add_inputs, command, fail, gather, positive_int, real, unique_names

HELP = "contact sheet of contents, styles and their results"
EXAMPLES = """  adain-cuda grid --content-dir photos --style-dir paintings --results output -o sheet.png
  adain-cuda grid --content a.jpg b.jpg --style s.jpg --results output -o sheet.jpg --cell 384
"""


def add_parser(sub) -> None:
    gr = command(sub, "grid", HELP, EXAMPLES)
    add_inputs(gr)
    gr.add_argument("--results", required=True, help="folder holding <content>_stylized_<style>.<ext>")
    gr.add_argument("-o", "--output", required=True, help="the sheet's file name")
    gr.add_argument("--cell", type=positive_int, default=256, help="cell size in pixels")
    gr.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..stylize.sheet import contact_sheet

    try:
        contents = gather(args.content, args.content_dir)
        styles = gather(args.style, args.style_dir)
    except ImageError as exc:
        return fail(exc)
    results_dir, results, missing = Path(args.results), {}, 0
    style_names = unique_names(styles)
    for i, c in enumerate(unique_names(contents)):
        for j, s in enumerate(style_names):
            found = sorted(results_dir.glob(f"{glob.escape(c)}_stylized_{glob.escape(s)}.*"))
            if found:
                results[(i, j)] = found[0]
            else:
                missing += 1
    out = Path(args.output)
    if real(out) in {real(p) for p in [*contents, *styles]}:
        return fail(f"{out} is one of the inputs; choose another -o")
    try:
        imaging.save_pil(contact_sheet(contents, styles, results, cell=args.cell), out)
    except (ImageError, OSError, ValueError) as exc:
        return fail(exc)
    print(f"contact sheet: {out} ({len(results)} results, {missing} missing shown grey)")
    return EXIT_OK
