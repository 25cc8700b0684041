"""Ctrl-C and SIGTERM as a request that a long loop honours at its next safe point (between
training steps, between batches of a dataset), so that nothing is left half-done."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["deferred_interrupts"]


class _Deferred:
    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum, frame) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt("interrupted twice; the work in progress was not finished")
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[_Deferred]:
    """Turns Ctrl-C and SIGTERM into a request (``flag.requested``) that the caller honours at its
    next safe point: the trainer between steps, so a checkpoint never holds a half-applied
    optimizer step; the dataset runner between batches. A second signal interrupts at once.
    Outside the main thread (where handlers cannot be set) it changes nothing."""
    flag = _Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, flag)
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
