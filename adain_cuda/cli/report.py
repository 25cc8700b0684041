"""How a command tells its user what happened: exit codes, one line per failure instead of a
traceback (library messages put in the command line's words), and the library's log records as
the command's own lines."""

from __future__ import annotations

import logging
import sys

from ..images.imaging import ImageError
from ..models import WeightsError

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1  # some items of a batch failed; the rest is done
EXIT_USAGE = 2         # nothing was done: bad options or inputs
EXIT_INTERRUPTED = 130

# The errors a command reports as one line: bad inputs, weight files, options, files.
USER_ERRORS = (ImageError, WeightsError, ValueError, OSError)

# The library names its parameters in backticks; on the command line they are these flags.
_FLAGS = {
    "content_size": "--content-size", "style_size": "--style-size", "device": "--device",
    "precision": "--precision", "vgg": "--vgg", "decoder": "--decoder", "alpha": "--alpha",
    "weights": "--style-interpolation-weights", "masks": "--mask", "crop": "--crop",
    "allow_download": "--no-download", "batch_size": "--batch-size", "codec": "--codec", "crf": "--crf",
    "preset": "--preset", "temporal_smoothing": "--temporal-smoothing", "cell": "--cell",
    "overwrite": "--overwrite", "resume": "--resume", "output_dir": "-o/--output", "seed": "--seed",
}


def in_cli_words(message: str) -> str:
    """A library message with its backticked parameter names (`content_size`) replaced by the
    flags that set them (--content-size); other backticked words lose their backticks."""
    for name, flag in _FLAGS.items():
        message = message.replace(f"`{name}`", flag)
    return message.replace("`", "")


def describe(exc: BaseException | str) -> str:
    """One line for an error: OSErrors as 'file: reason', others by their message's first line."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc).strip() or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return in_cli_words(lines[0] if lines else text)


def fail(exc: BaseException | str, code: int = EXIT_USAGE) -> int:
    """Prints ``adain-cuda: <what went wrong>`` (one line) to stderr and returns the exit code."""
    print(f"adain-cuda: {describe(exc)}", file=sys.stderr)
    return code


class _ConsoleHandler(logging.Handler):
    """The library's log records as the command's own lines: warnings to stderr, the rest to
    stdout, written around any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(in_cli_words(record.getMessage()),
                   file=sys.stderr if record.levelno >= logging.WARNING else sys.stdout)


def show_library_messages() -> None:
    """Prints the package's log messages (INFO and up) while a command runs; idempotent."""
    root = logging.getLogger("adain_cuda")
    if not any(isinstance(h, _ConsoleHandler) for h in root.handlers):
        root.addHandler(_ConsoleHandler())
    root.setLevel(logging.INFO)
