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
import signal
import sys
import threading

from .._version import __version__
from . import app, demo, export, grid, info, recolor, style_bank, stylize, stylize_dataset, train, video, weights
from .report import EXIT_INTERRUPTED, EXIT_USAGE, fail, show_library_messages

__all__ = ["build_parser", "main"]

COMMANDS = (stylize, grid, recolor, style_bank, stylize_dataset, video, train, export, weights, info, demo, app)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adain-cuda", description="Arbitrary style transfer with AdaIN.")
    parser.add_argument("--version", action="version", version=f"adain_cuda {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _terminate(signum, frame):
    # SIGTERM (a job scheduler, `kill`) takes the same way out as Ctrl-C, so every temporary
    # file is removed and nothing half-written is left under a result's name.
    raise KeyboardInterrupt("terminated")


# torch reports some file failures (a full disk, a truncated archive) as RuntimeError.
_FILE_WORDS = ("PytorchStreamReader", "PytorchStreamWriter", "No space left", "file write failed", "Read-only file")


def _about_files(exc: RuntimeError) -> bool:
    return any(word in str(exc) for word in _FILE_WORDS)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    show_library_messages()
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except KeyboardInterrupt as exc:
        return fail(str(exc) or "interrupted", EXIT_INTERRUPTED)
    except OSError as exc:  # a file system's answer no command foresaw: still one line
        return fail(exc)
    except RuntimeError as exc:
        if not _about_files(exc):
            raise
        return fail(exc)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
