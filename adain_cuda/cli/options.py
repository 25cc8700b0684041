"""The options the commands share: help that shows every default, argument types (sizes, lists,
numbers in range), the input and network options and the Stylizer they describe."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..images import imaging
from ..training.config import SEED_MAX


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (unless the text already says it); examples in
    the epilog keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "default" in text:
            return text
        if action.default is None:
            return f"{text} (default: none)" if action.nargs != 0 else text
        if action.default is False and action.nargs == 0:
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def command(sub, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help shows every default and ends with examples."""
    return sub.add_parser(
        name, help=help, description=help, epilog="examples:\n" + examples, formatter_class=HelpFormatter
    )


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def csv_floats(text: str) -> list[float]:
    try:
        return [float(v) for v in csv_list(text.replace(" ", ","))]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _integer(text: str, minimum: int, what: str, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to SEED_MAX (2**32 - 1)."""
    return _integer(text, 0, f"a whole number from 0 to {SEED_MAX}", SEED_MAX)


def port(text: str) -> int:
    """A TCP port: 1..65535."""
    return _integer(text, 1, "a port number from 1 to 65535", 65535)


def size(text: str) -> int:
    """A pixel size: 0 (keep) or positive."""
    return _integer(text, 0, "0 (keep the size) or a positive number of pixels")


def positive_int(text: str) -> int:
    return _integer(text, 1, "at least 1")


def unit_float(text: str) -> float:
    """A float in [0, 1] (alpha)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def save_ext(text: str) -> str:
    ext = text.lower().lstrip(".")
    if "." + ext not in imaging.IMAGE_EXTENSIONS:
        raise argparse.ArgumentTypeError(f"unsupported --save-ext {text!r}; use png, jpg, bmp, tif or webp")
    return ext


def add_inputs(p: argparse.ArgumentParser) -> None:
    """--content / --content-dir and --style / --style-dir, one of each required."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--content",
        type=csv_list,
        nargs="+",
        action="extend",
        help="content image(s): several, comma- or space-separated (shell globs work)",
    )
    src.add_argument("--content-dir", "--content_dir", help="folder of content images")
    sty = p.add_mutually_exclusive_group(required=True)
    sty.add_argument(
        "--style", type=csv_list, nargs="+", action="extend", help="style image(s): several, comma- or space-separated"
    )
    sty.add_argument("--style-dir", "--style_dir", help="folder of style images")


def gather(files: list | None, folder: str | None) -> list[Path]:
    """The images named by a --X / --X-dir pair (--X values may be lists of comma-separated names)."""
    if folder is not None:
        return imaging.list_images(folder)
    if files is None:
        raise ValueError("no images given")
    return [Path(f) for item in files for f in (item if isinstance(item, list) else [item])]


def add_network_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vgg", help="VGG weights (vgg_normalised.pth); default: the cached download")
    p.add_argument(
        "--decoder", help="decoder weights (decoder.pth or one the trainer saved); default: the cached download"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="network precision")
    onoff = argparse.BooleanOptionalAction
    p.add_argument(
        "--fast",
        action=onoff,
        default=None,
        help="exact rewrites of the networks (same results to rounding; docs/fast-path.md); default: on",
    )
    p.add_argument("--channels-last", action=onoff, default=None, help="run the networks in channels_last; default: on")
    p.add_argument(
        "--cuda-graphs",
        action=onoff,
        default=None,
        help="replay a CUDA graph for content sizes seen before (video frames); default: on for CUDA",
    )
    p.add_argument("--no-download", action="store_true", help="never download missing weights")


def stylizer_from(args: argparse.Namespace):
    """The Stylizer the network options describe."""
    from ..stylize import Stylizer

    return Stylizer.from_pretrained(
        args.vgg,
        args.decoder,
        allow_download=not args.no_download,
        device=args.device,
        precision=args.precision,
        fast=args.fast,
        channels_last=args.channels_last,
        cuda_graphs=args.cuda_graphs,
    )
