"""``adain-cuda export``: a stylizer as an ONNX model or a torch.export program."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import command, size, unit_float
from .report import EXIT_OK, USER_ERRORS, fail

HELP = "export a stylizer (content in, stylized image out) to ONNX or a torch.export program"
EXAMPLES = """  adain-cuda export --style la_muse.jpg -o la_muse.onnx           # the style baked in
  adain-cuda export -o any_style.onnx                              # inputs: content and style
  adain-cuda export --style la_muse.jpg --format program -o la_muse.pt2
"""


def add_parser(sub) -> None:
    p = command(sub, "export", HELP, EXAMPLES)
    p.add_argument("-o", "--output", required=True, help="the file to write (.onnx or .pt2)")
    p.add_argument(
        "--style",
        help="a style image whose statistics are baked in (without it the model also "
        "takes the style image as its second input)",
    )
    p.add_argument("--style-size", "--style_size", type=size, default=512, help="shorter side of the style (0: keep)")
    p.add_argument("--alpha", type=unit_float, default=1.0, help="content-style trade-off in [0, 1]")
    p.add_argument(
        "--format",
        choices=["onnx", "program"],
        default=None,
        help="onnx (standard operators, for onnxruntime and others) or program (torch.export, "
        "with the fused op); default: from the output's extension",
    )
    p.add_argument(
        "--fixed-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="export for this input size only; default: any height and width that are multiples of 8",
    )
    p.add_argument("--vgg", help="VGG weights; default: the cached download")
    p.add_argument("--decoder", help="decoder weights; default: the cached download")
    p.add_argument("--no-download", action="store_true", help="never download missing weights")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..export import check_destination, export_onnx, export_program
    from ..stylize import Stylizer

    out = Path(args.output)
    fmt = args.format or ("program" if out.suffix in (".pt2", ".pt") else "onnx")
    try:
        check_destination(out, args.overwrite)  # before loading weights and tracing: the slow part
        stylizer = Stylizer.from_pretrained(
            args.vgg,
            args.decoder,
            allow_download=not args.no_download,
            device="cpu",
            fast=False,
            channels_last=False,
            cuda_graphs=False,
        )
        export = export_onnx if fmt == "onnx" else export_program
        options = dict(style=args.style, alpha=args.alpha, style_size=args.style_size)
        if args.fixed_size:
            options.update(example_size=tuple(args.fixed_size), dynamic=False)
        path = export(stylizer, out, overwrite=args.overwrite, **options)
    except ImportError as exc:
        return fail(f"ONNX export needs onnx and onnxscript: pip install 'adain_cuda[export]' ({exc})")
    except USER_ERRORS as exc:
        return fail(exc)
    print(
        f"{path}: {'ONNX model' if fmt == 'onnx' else 'torch.export program'}, "
        f"{'content in' if args.style else 'content and style in'}, stylized image out"
    )
    return EXIT_OK
