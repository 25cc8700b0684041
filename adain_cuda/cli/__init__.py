"""``adain-cuda``: the command line, a thin layer over the library (one module per command).

    adain-cuda stylize --content c.jpg --style s.jpg [--alpha 0.8] [-o output]
    adain-cuda stylize --content-dir photos --style-dir paintings --grid
    adain-cuda grid --content-dir photos --style-dir paintings --results output -o sheet.png
    adain-cuda video clip.mp4 --style s.jpg -o out.mp4 [--temporal-smoothing 0.9]
    adain-cuda train --content-dir coco --style-dir wikiart --vgg vgg_normalised.pth
    adain-cuda weights download | list | path
    adain-cuda info | demo
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from . import demo, grid, info, stylize, train, video, weights
from .common import EXIT_INTERRUPTED, fail

__all__ = ["build_parser", "main"]

COMMANDS = (stylize, grid, video, train, weights, info, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adain-cuda", description="Arbitrary style transfer with AdaIN.")
    parser.add_argument("--version", action="version", version=f"adain_cuda {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt as exc:
        return fail(exc or "interrupted", EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
