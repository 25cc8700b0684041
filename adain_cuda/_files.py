"""Writing files so that nothing a user has is lost: every write of the package goes through
:func:`atomic_path`. The content goes to a temporary file in the destination's folder and takes
the final name only once it is complete, so a failed or interrupted write (a full disk, Ctrl-C,
SIGTERM) leaves the previous file, if any, untouched and no partial file behind.

With ``overwrite=False`` the final name is taken by exclusive creation (a hard link, which fails
when the name exists): of two processes writing the same result, one wins and the other is told
the file exists, instead of both reporting a write and one silently replacing the other.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "FileExists",
    "atomic_path",
    "atomic_write",
    "is_temporary",
    "check_writable_folder",
    "fits_name_limit",
    "name_limit",
    "refuse_existing",
    "temporary_name",
]

# Short and independent of the final name, so a final name at the file system's length limit
# still has a temporary name that fits.
_TMP_PREFIX = ".adain-tmp-"


class FileExists(FileExistsError):
    """The destination exists and overwriting was not asked for."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(errno.EEXIST, "exists (use `overwrite` to replace it)", str(path))


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """Raises :class:`FileExists` when ``path`` exists and ``overwrite`` is off: the check a
    writer makes before its work (the write itself stays exclusive, for a file made meanwhile)."""
    if not overwrite and os.path.lexists(path):
        raise FileExists(path)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of the temporary names :func:`atomic_path` writes through (left
    behind only by a killed process): never an input or a result."""
    return name.startswith(_TMP_PREFIX)


def temporary_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` that keeps its extension (writers pick formats by
    it), as short as possible whatever the length of ``path``'s name."""
    suffix = path.suffix if len(path.suffix) <= 16 else ""
    return path.with_name(f"{_TMP_PREFIX}{secrets.token_hex(8)}{suffix}")


def name_limit(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or its nearest existing
    parent) accepts; 255 where it cannot be asked."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(os.pathconf(probe, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def fits_name_limit(name: str, limit: int = 255) -> bool:
    return len(os.fsencode(name)) <= limit


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _claim(tmp: Path, path: Path) -> None:
    """Gives the finished ``tmp`` the name ``path`` only if no file has it (atomically)."""
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise FileExists(path) from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: reserve the name exclusively, then move over it.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError as exists:
            raise FileExists(path) from exists
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yields a temporary path to write ``path``'s new content to. On success it becomes
    ``path`` (with the permissions a new file gets): replacing an existing file when
    ``overwrite``, else only if no file has that name meanwhile (:class:`FileExists` otherwise).
    On any error or interrupt the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _claim(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[Path], object], *, overwrite: bool = True) -> Path:
    """``write(tmp)`` through :func:`atomic_path`, creating the folder; a failed write (a full
    disk, a read-only file system; some writers report those as RuntimeError) is one OSError that
    names ``path`` and says the previous file is kept. :class:`FileExists` passes through."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=overwrite) as tmp:
            write(tmp)
    except FileExists:
        raise
    except (OSError, RuntimeError) as exc:
        reason = (
            exc.strerror
            if isinstance(exc, OSError) and exc.strerror
            else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        )
        kept = "; the previous file is kept" if path.exists() else ""
        raise OSError(f"could not write {path}: {reason}{kept}") from exc
    return path


def check_writable_folder(folder: str | Path, what: str = "the output folder") -> Path:
    """Creates ``folder`` if needed and proves that a file can be created in it (a read-only
    file system, a missing permission, a file where the folder should be), before any work whose
    results would go there. Raises OSError subclasses with a one-line message."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder} is a file, not a folder; choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(folder / "probe")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise OSError(f"cannot write to {what} {folder}: {exc.strerror or exc}") from exc
    return folder
