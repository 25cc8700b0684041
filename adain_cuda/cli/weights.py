"""``adain-cuda weights``: download, list and locate the published weight files."""

from __future__ import annotations

import argparse

from ..models import WeightsError, weights
from .options import command
from .report import EXIT_FAILED_ITEMS, EXIT_OK, fail

HELP = "manage the pretrained weight files"
EXAMPLES = """  adain-cuda weights download          # both files, verified, into the cache
  adain-cuda weights list              # where they are and whether they are the published files
  adain-cuda weights path vgg
"""


def add_parser(sub) -> None:
    wt = command(sub, "weights", HELP, EXAMPLES)
    wsub = wt.add_subparsers(dest="action", required=True)
    dl = wsub.add_parser("download", help="download (and verify) weight files into the cache")
    dl.add_argument("which", nargs="?", default="all", choices=["all", *weights.REGISTRY])
    wsub.add_parser("list", help="the known files, their cache paths and whether they are present")
    pa = wsub.add_parser("path", help="print the cache folder, or one file's path")
    pa.add_argument("which", nargs="?", choices=list(weights.REGISTRY))
    wt.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "path":
        print(weights.cache_dir() / weights.REGISTRY[args.which].filename if args.which else weights.cache_dir())
        return EXIT_OK
    if args.action == "list":
        for spec in weights.REGISTRY.values():
            path = weights.cache_dir() / spec.filename
            state = {
                "verified": "present",
                "missing": "missing",
                "wrong": "WRONG FILE (not the published one: delete it, or run weights download)",
            }[weights.cached_state(spec)]
            size = f"{spec.size:,} bytes; " if spec.size else ""
            print(
                f"{spec.key:<8} {spec.filename:<20} {state} {path}\n         {spec.description}; {size}"
                f"sha256 {spec.sha256}\n         {spec.url}"
            )
        return EXIT_OK
    keys = list(weights.REGISTRY) if args.which == "all" else [args.which]
    status = EXIT_OK
    for key in keys:
        spec = weights.REGISTRY[key]
        dest = weights.cache_dir() / spec.filename
        if weights.cached_state(spec) == "verified":
            print(f"{spec.filename}: already present and verified at {dest}")
            continue
        try:
            print(f"{spec.filename}: saved and verified at {weights.download(spec)}")
        except WeightsError as exc:
            status = fail(exc, EXIT_FAILED_ITEMS)
    return status
