"""How a command tells its user what happened: exit codes, one line per failure instead of a
traceback (library messages put in the command line's words), and the library's log records as
the command's own lines."""

from __future__ import annotations

import logging
import re
import sys

from ..images.imaging import ImageError
from ..models import WeightsError

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1  # some items of a batch failed; the rest is done
EXIT_USAGE = 2  # nothing was done: bad options or inputs
EXIT_INTERRUPTED = 130

# The errors a command reports as one line: bad inputs, weight files, options, files.
USER_ERRORS = (ImageError, WeightsError, ValueError, OSError)

# The library names its parameters in backticks (`content_size`); on the command line each is the
# option spelled --content-size, except these.
_FLAGS = {
    "weights": "--style-interpolation-weights",
    "masks": "--mask",
    "allow_download": "--no-download",
    "output_dir": "-o/--output",
    "temporal_smoothing": "--temporal-smoothing",
    "copy_other": "--no-copy-other",
}
_PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")


def in_cli_words(message: str) -> str:
    """A library message with its backticked parameter names (`content_size`) replaced by the
    options that set them (--content-size); other backticked text loses its backticks."""
    message = _PARAMETER.sub(lambda m: _FLAGS.get(m.group(1), "--" + m.group(1).replace("_", "-")), message)
    return message.replace("`", "")


def describe(exc: BaseException | str) -> str:
    """One line for an error: OSErrors as 'file: reason', others by their message's first line."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc).strip() or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Original Traceback" in text and lines:  # an error from a DataLoader worker: its own last line
        return in_cli_words(f"in a data loading worker: {lines[-1]}")
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

        tqdm.write(
            in_cli_words(record.getMessage()), file=sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        )


def show_library_messages() -> None:
    """Prints the package's log messages (INFO and up) while a command runs; idempotent."""
    root = logging.getLogger("adain_cuda")
    if not any(isinstance(h, _ConsoleHandler) for h in root.handlers):
        root.addHandler(_ConsoleHandler())
    root.setLevel(logging.INFO)
