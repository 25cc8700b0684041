"""``adain-cuda grid``: a contact sheet of contents, styles and the results already written."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..images import imaging
from .batch import Batch, Job, plan, prepare_output, real
from .options import add_inputs, command, gather, positive_int
from .report import EXIT_OK, USER_ERRORS, fail
from .stylize import SHEET, pair_stems

HELP = "contact sheet of contents, styles and the results already written"
EXAMPLES = """  adain-cuda grid --content-dir photos --style-dir paintings --results output -o sheet.png
  adain-cuda grid --content a.jpg b.jpg --style s.jpg --results output -o sheet.jpg --cell 384
"""


def add_parser(sub) -> None:
    gr = command(sub, "grid", HELP, EXAMPLES)
    add_inputs(gr)
    gr.add_argument("--results", required=True, help="the folder `stylize` wrote the results to")
    gr.add_argument("-o", "--output", required=True, help="the sheet's file name")
    gr.add_argument("--cell", type=positive_int, default=256, help="cell size in pixels")
    gr.add_argument("--overwrite", action="store_true", help="replace an existing sheet (never an input)")
    gr.set_defaults(run=run)


def find_results(folder: Path, contents: list[Path], styles: list[Path]) -> dict[tuple[int, int], Path]:
    """The results `stylize` wrote for these inputs into ``folder``, named as its plan names
    them, whatever image format they were saved in."""
    inputs = {real(p) for p in [*contents, *styles]}
    pairs = [(i, j) for i in range(len(contents)) for j in range(len(styles))]
    stems = [*pair_stems(contents, styles), SHEET]
    found = {}
    for ext in sorted(imaging.IMAGE_EXTENSIONS):
        for pair, path in zip(pairs, plan(folder, stems, ext, [*contents, *styles])):
            if pair not in found and path.is_file() and real(path) not in inputs:
                found[pair] = path
    return found


def run(args: argparse.Namespace) -> int:
    from ..images.sheet import contact_sheet

    try:
        contents = gather(args.content, args.content_dir)
        styles = gather(args.style, args.style_dir)
        out = Path(args.output)
        imaging.image_format(out)
        prepare_output(out.parent if str(out.parent) else ".")
    except USER_ERRORS as exc:
        return fail(exc)
    results = find_results(Path(args.results), contents, styles)
    missing = len(contents) * len(styles) - len(results)
    inputs = [*contents, *styles, *results.values()]
    report = Batch(
        [Job(f"contact sheet {out}", out)], inputs=inputs, overwrite=args.overwrite, desc="contact sheet"
    ).run(
        lambda job, overwrite: imaging.save_pil(
            contact_sheet(contents, styles, results, cell=args.cell), job.output, overwrite=overwrite
        )
    )
    if report.failed or report.skipped:
        return fail(report.failed[0] if report.failed else report.skipped[0])
    print(f"contact sheet: {out} ({len(results)} results, {missing} missing shown grey)")
    return EXIT_OK
