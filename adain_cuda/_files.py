"""Writing files so that nothing a user has is lost: every result goes to a temporary file in the
destination's folder and is renamed over the final name only once it is complete. A failed or
interrupted write (a full disk, Ctrl-C) leaves the previous file, if any, untouched."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` that keeps its extension (writers pick formats by it)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write ``path``'s new content to; on success it replaces
    ``path`` (with the permissions a new file gets), on any error or interrupt it is removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
