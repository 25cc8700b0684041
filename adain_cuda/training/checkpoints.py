"""A training run's folder and its checkpoints, so that no run loses or spoils another's work.

- A run folder is owned by one trainer at a time: :class:`RunFolder` holds an exclusive lock on
  ``run.lock`` (released by the operating system if the process dies), and a second trainer on
  the same folder stops at once, saying which process holds it.
- A new run never starts over an existing one unless asked (``overwrite``); resuming requires
  the checkpoint it resumes from.
- A checkpoint is written only between optimisation steps (Ctrl-C and SIGTERM are deferred to the
  end of the step, see :func:`deferred_interrupts`), through the package's atomic write, and never
  with non-finite weights: a run that diverged stops with an error naming the iteration and the
  last good checkpoint stays.
- Reading one runs no code (``weights_only``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import IO

import torch

from .._files import atomic_write
from .._signals import deferred_interrupts

__all__ = [
    "CHECKPOINT",
    "CheckpointError",
    "Diverged",
    "RunFolder",
    "RunFolderBusy",
    "deferred_interrupts",
    "read_checkpoint",
    "write_checkpoint",
]

CHECKPOINT = "checkpoint.pt"
LOCK = "run.lock"
# What a run writes into its folder: a folder holding any of these holds a run.
RUN_FILES = (CHECKPOINT, "decoder.pth", "log.csv")
_CHECKPOINT_KEYS = {"decoder", "optimizer", "scheduler", "iteration", "rng"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from (missing, truncated, not a checkpoint, unsafe)."""


class RunFolderBusy(ValueError):
    """Another trainer owns the run folder."""


class Diverged(ValueError):
    """The weights are no longer finite; nothing was saved over the last good checkpoint."""


class RunFolder:
    """The folder of one run, locked while this process trains in it (``main``: rank 0, the
    only process that writes; the others take no lock)."""

    def __init__(self, path: str | Path, *, main: bool = True) -> None:
        self.path, self.main = Path(path), main
        self._lock_file: IO[str] | None = None

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def existing_run_files(self) -> list[str]:
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def check_new_run(self, *, resume: str | None, overwrite: bool) -> None:
        """Refuses to start where the files of another run would be replaced, and to resume
        where there is nothing to resume from."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"the run folder {self.path} is a file; choose another `output_dir`")
        found = self.existing_run_files()
        if resume is None:
            if found and not overwrite:
                raise ValueError(
                    f"{self.path} already holds a training run ({', '.join(found)}): use `resume` to "
                    f"continue it, `overwrite` to start over there, or another `output_dir`"
                )
            return
        path = self.resume_path(resume)
        if not path.is_file():
            held = f" (it holds {', '.join(found)}, but no checkpoint)" if found else ""
            raise CheckpointError(
                f"cannot resume: no checkpoint at {path}{held}. Start a new run without "
                f"`resume`{' and with `overwrite`' if found else ''}, or name a checkpoint"
            )

    def resume_path(self, resume: str) -> Path:
        return self.checkpoint if resume == "auto" else Path(resume)

    def acquire(self) -> RunFolder:
        """Creates the folder and takes its lock (main process only)."""
        if not self.main:
            return self
        import fcntl

        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.path / LOCK, "a+")
        except OSError as exc:
            raise OSError(f"cannot create the run folder {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise RunFolderBusy(
                    f"{self.path} is in use by another trainer ({owner}); wait for it to finish "
                    "or choose another `output_dir`"
                ) from exc
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._lock_file = handle
        return self

    def release(self) -> None:
        # The lock file stays: removing it would let a waiting opener lock a file no one else sees.
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> RunFolder:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def check_finite_weights(decoder_state: dict[str, torch.Tensor], iteration: int) -> None:
    """Raises :class:`Diverged` when any weight is NaN or infinite."""
    bad = _non_finite(decoder_state)
    if bad:
        raise Diverged(
            f"training diverged: the decoder's weights are not finite at iteration {iteration} "
            f"({', '.join(bad[:4])}{' and more' if len(bad) > 4 else ''}); nothing was saved over the "
            "last checkpoint. Resume from it with a lower `lr`"
        )


def save(obj: object, path: Path) -> None:
    """torch.save through the atomic write: a failed write (a full disk) leaves the previous
    file intact and no partial file behind, and is one OSError naming the file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def write_checkpoint(state: dict, folder: Path) -> Path:
    """The full training state to ``checkpoint.pt`` and the decoder alone (community layout) to
    ``decoder_iter_N.pth``; refused (:class:`Diverged`) when the weights are not finite."""
    check_finite_weights(state["decoder"], state["iteration"])
    save(state, folder / CHECKPOINT)
    path = folder / f"decoder_iter_{state['iteration']}.pth"
    save(state["decoder"], path)
    return path


def read_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`write_checkpoint`, read with ``weights_only=True``
    (tensors, numbers, strings and containers only: a crafted file cannot run code)."""
    if not path.is_file():
        raise CheckpointError(f"cannot resume: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every way a file can be broken or unsafe
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"`resume` {path}: not a readable adain_cuda checkpoint ({type(exc).__name__}: "
            f"{first}); resume from another checkpoint or start over with `overwrite`"
        ) from exc
    if not isinstance(state, dict) or not _CHECKPOINT_KEYS <= set(state):
        got = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"`resume` {path}: not an adain_cuda training checkpoint (expected the keys "
            f"{sorted(_CHECKPOINT_KEYS)}, got {got}); a decoder.pth is loaded with `decoder`"
        )
    if isinstance(state["decoder"], dict) and _non_finite(state["decoder"]):
        raise CheckpointError(f"`resume` {path}: the checkpoint's weights are not finite; resume from an earlier one")
    return state
