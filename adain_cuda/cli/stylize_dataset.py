"""``adain-cuda stylize-dataset``: a whole image tree stylized into a copy of the tree, on one
process or many (torchrun), resumable (docs/datasets.md)."""

from __future__ import annotations

import argparse

from .options import add_network_options, command, positive_int, save_ext, seed, size, stylizer_from
from .report import EXIT_FAILED_ITEMS, EXIT_INTERRUPTED, EXIT_OK, USER_ERRORS, fail

HELP = "stylize every image of a folder tree into the same tree (styles from a bank or folder; torchrun scales it)"
EXAMPLES = """  adain-cuda stylize-dataset imagenet/train paintings.bank.pt -o stylized/train
  adain-cuda stylize-dataset coco/images wikiart -o stylized --num-styles 3 --alpha 0.5:1 --seed 7
  torchrun --nproc-per-node 8 -m adain_cuda stylize-dataset imagenet/train paintings.bank.pt -o out
  (run the same command again to resume; finished images are skipped)
"""


def alpha_range(text: str) -> tuple[float, float]:
    """'1', '0.7' or a range 'LOW:HIGH' within [0, 1]."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or a range LOW:HIGH, got {text!r}") from exc
    if len(values) not in (1, 2) or not all(0.0 <= v <= 1.0 for v in values) or values[0] > values[-1]:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or a range LOW:HIGH within it, got {text!r}")
    return values[0], values[-1]


def quality(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be in 1..100, got {text}")
    return value


def add_parser(sub) -> None:
    p = command(sub, "stylize-dataset", HELP, EXAMPLES)
    p.add_argument("content_root", help="the image tree to stylize (searched recursively; never written to)")
    p.add_argument("styles", help="a style bank (adain-cuda style-bank) or a folder of style images")
    p.add_argument(
        "-o", "--output", required=True, help="the output root: the same tree, plus manifest.csv and failed.csv"
    )
    p.add_argument(
        "--num-styles", type=positive_int, default=1, help="stylized versions per image (>1: name_v0.jpg, ...)"
    )
    p.add_argument(
        "--alpha", type=alpha_range, default=(1.0, 1.0), help="style strength, or a range LOW:HIGH drawn per version"
    )
    p.add_argument("--seed", type=seed, default=0, help="the draw of styles and alphas (0..2^32-1)")
    p.add_argument(
        "--content-size", "--content_size", type=size, default=0, help="shorter side of the contents (0: keep)"
    )
    p.add_argument("--crop", action="store_true", help="center-crop the contents to squares")
    p.add_argument(
        "--style-size", "--style_size", type=size, default=512, help="shorter side of the styles of a folder"
    )
    p.add_argument(
        "--extensions", default=None, help="image extensions to stylize, e.g. jpg,png (default: all readable)"
    )
    p.add_argument("--save-ext", "--save_ext", type=save_ext, default=None, help="output format (default: the input's)")
    p.add_argument("--quality", type=quality, default=95, help="JPEG quality (1-100)")
    p.add_argument(
        "--batch-size", type=positive_int, default=None, help="images computed together (default: 8 on CUDA, 1 on CPU)"
    )
    p.add_argument("--workers", type=int, default=None, help="image-reading processes (default: from the CPU count)")
    p.add_argument("--fallback-size", type=size, default=0, help="retry an image that runs out of memory at this size")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that exist (default: skip them, i.e. resume)")
    p.add_argument("--no-copy-other", dest="copy_other", action="store_false", help="do not copy non-image files")
    add_network_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._device import place
    from ..datasets import stylize_dataset

    if args.workers is not None and args.workers < 0:
        return fail("--workers must be 0 (read in this process) or more")
    try:
        # under torchrun: join the launch, each process on its own GPU with --device auto/cuda
        args.device = str(place(args.device).device)
        report = stylize_dataset(
            stylizer_from(args),
            args.content_root,
            args.styles,
            args.output,
            num_styles=args.num_styles,
            seed=args.seed,
            alpha=args.alpha,
            content_size=args.content_size,
            crop=args.crop,
            style_size=args.style_size,
            extensions=args.extensions,
            save_ext=args.save_ext,
            quality=args.quality,
            batch_size=args.batch_size,
            workers=args.workers,
            overwrite=args.overwrite,
            copy_other=args.copy_other,
            fallback_size=args.fallback_size,
        )
    except USER_ERRORS as exc:
        return fail(exc)
    for content, version, reason in report.failed:
        print(f"failed: {content} (version {version}): {reason}")
    print(report.summary())
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED_ITEMS if report.failed else EXIT_OK
