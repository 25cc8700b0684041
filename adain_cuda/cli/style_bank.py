"""``adain-cuda style-bank``: the relu4_1 statistics of every image of a style folder, once."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_network_options, command, positive_int, size, stylizer_from
from .report import EXIT_FAILED_ITEMS, EXIT_OK, USER_ERRORS, fail

HELP = "encode every style image of a folder once into a style bank (statistics, paths, sha256)"
EXAMPLES = """  adain-cuda style-bank paintings -o paintings.bank.pt
  adain-cuda style-bank wikiart --style-size 512 --batch-size 16 -o wikiart.bank.pt --device cuda
"""


def add_parser(sub) -> None:
    p = command(sub, "style-bank", HELP, EXAMPLES)
    p.add_argument("style_dir", help="folder of style images (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="the bank file to write (e.g. paintings.bank.pt)")
    p.add_argument("--style-size", "--style_size", type=size, default=512, help="shorter side of the styles (0: keep)")
    p.add_argument("--crop", action="store_true", help="center-crop the styles to squares")
    p.add_argument("--batch-size", type=positive_int, default=8, help="styles of one size encoded together")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bank")
    add_network_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._files import check_writable_folder, refuse_existing
    from ..stylize.style_bank import build_style_bank

    out = Path(args.output)
    try:
        refuse_existing(out, args.overwrite)  # before the work; the save stays exclusive
        check_writable_folder(out.parent if str(out.parent) else ".", "the bank's folder")
        bank = build_style_bank(
            stylizer_from(args), args.style_dir, style_size=args.style_size, crop=args.crop, batch_size=args.batch_size
        )
        bank.save(out, overwrite=args.overwrite)
    except USER_ERRORS as exc:
        return fail(exc)
    print(f"{out}: {len(bank)} styles at {args.style_size} px, {len(bank.skipped)} skipped")
    return EXIT_FAILED_ITEMS if bank.skipped else EXIT_OK
