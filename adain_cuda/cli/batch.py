"""The batch runner of every command that writes many files (stylize, grid, recolor).

A batch is planned before anything runs: every job gets its output name up front, and the plan
guarantees that no two jobs share a name (compared case-insensitively, as macOS and Windows file
systems would), that no name is one of the inputs, and that every name fits the file system's
length limit. Running it then treats each job the same way: an existing result is kept unless
``overwrite`` (and never an input), results are created exclusively (of two runs into one
folder, one writes a file and the other reports it as there), a job that fails is reported in
one line and the batch goes on, and the summary gives the exit code.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import FileExists, check_writable_folder, fits_name_limit, name_limit
from .report import EXIT_FAILED_ITEMS, EXIT_OK, describe

__all__ = ["Batch", "Job", "Report", "input_names", "plan", "real"]


def real(path: Path | str) -> str:
    """The path with links resolved, for comparing files; never raises (a link loop stays as is)."""
    return os.path.realpath(path)


def input_names(paths: Sequence[Path]) -> list[str]:
    """A name per input for output names: its stem; where stems collide case-insensitively
    (photo.jpg and photo.PNG, or a/photo.jpg and b/photo.jpg) the stem and its extension, and
    where those still collide, a number."""
    stems = [p.stem for p in paths]
    folded = [s.casefold() for s in stems]
    names = [
        stem if folded.count(stem.casefold()) == 1 else f"{stem}_{p.suffix.lstrip('.').lower()}"
        for stem, p in zip(stems, paths)
    ]
    return _numbered(names)


def _numbered(names: list[str], taken: Iterable[str] = ()) -> list[str]:
    """``names`` made distinct case-insensitively, and from ``taken``: a later repeat gets the
    first free ``_2``, ``_3``, ... (a free name is checked against every name, not only repeats)."""
    used = {t.casefold() for t in taken}
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.casefold() in used:
            n += 1
            candidate = f"{name}_{n}"
        used.add(candidate.casefold())
        out.append(candidate)
    return out


def _fit(stem: str, suffix: str, limit: int) -> str:
    """``stem`` shortened so ``stem + suffix`` fits in ``limit`` bytes, ending in a hash of the
    whole stem so that two long names that share their start stay apart."""
    if fits_name_limit(stem + suffix, limit):
        return stem
    tag = "~" + hashlib.sha1(stem.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    # Room for the tag, a later "_N" and the suffix; cut on a character boundary.
    room = limit - len(tag) - 6 - len(os.fsencode(suffix))
    cut = stem
    while len(os.fsencode(cut)) > room:
        cut = cut[:-1]
    return cut + tag


def plan(folder: Path, stems: Sequence[str], suffix: str, inputs: Iterable[Path] = ()) -> list[Path]:
    """The output paths for ``stems`` (wanted file names without ``suffix``) in ``folder``:
    distinct case-insensitively, none of them one of ``inputs``, each within the length limit of
    the folder's file system. The same arguments always give the same paths."""
    limit = name_limit(folder)
    fitted = [_fit(stem, suffix, limit) for stem in stems]
    # An input already in the folder under a planned name keeps its name; the result gets another.
    here = real(folder)
    taken = [
        Path(p).name[: -len(suffix)]
        for p in inputs
        if os.path.dirname(real(p)) == here and Path(p).name.casefold().endswith(suffix.casefold())
    ]
    return [folder / f"{stem}{suffix}" for stem in _numbered(fitted, taken)]


@dataclass
class Job:
    label: str  # what the user reads: "photo.jpg x painting.jpg"
    output: Path
    data: Any = None  # whatever the command needs to do the job


@dataclass
class Report:
    done: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    present: list[Job] = field(default_factory=list)  # jobs whose result exists now (written or kept)

    def summary(self, folder: Path | str) -> int:
        """Prints the one-line summary and each failure; returns the exit code."""
        print(f"{len(self.done)} written to {folder}, {len(self.skipped)} skipped, {len(self.failed)} failed")
        for line in self.failed:
            print(f"  failed: {line}", file=sys.stderr)
        return EXIT_FAILED_ITEMS if self.failed else EXIT_OK


# The errors one job may end in without stopping the batch: its inputs, its result, the disk.
JOB_ERRORS = (ValueError, RuntimeError, OSError)


class Batch:
    """Runs planned jobs: ``write(job)`` writes ``job.output`` (created exclusively unless
    ``overwrite``; it receives the flag to pass on). Inputs are never written over."""

    def __init__(
        self, jobs: Sequence[Job], *, inputs: Iterable[Path], overwrite: bool, desc: str, unit: str = "image"
    ) -> None:
        self.jobs, self.overwrite, self.desc, self.unit = list(jobs), overwrite, desc, unit
        self.inputs = {real(p) for p in inputs}

    def run(self, write: Callable[[Job, bool], object]) -> Report:
        from tqdm.auto import tqdm

        report = Report()
        bar = tqdm(self.jobs, desc=self.desc, unit=self.unit, disable=not self.jobs)

        def say(kind: str, line: str, into: list[str]) -> None:
            into.append(line)
            bar.write(f"{kind}: {line}", file=sys.stderr if kind == "failed" else sys.stdout)

        try:
            for job in bar:
                if real(job.output) in self.inputs:  # the plan avoids this; a link could still lead here
                    say("failed", f"{job.label}: {job.output} is one of the inputs; not overwritten", report.failed)
                    continue
                if job.output.exists() and not self.overwrite:
                    say("skipped", f"{job.output} exists (use --overwrite to replace it)", report.skipped)
                    report.present.append(job)
                    continue
                try:
                    write(job, self.overwrite)
                except FileExists:
                    say("skipped", f"{job.output} was written meanwhile by another run; kept", report.skipped)
                    report.present.append(job)
                    continue
                except JOB_ERRORS as exc:  # report, carry on
                    say("failed", f"{job.label}: {describe(exc)}", report.failed)
                    continue
                report.done.append(job.output)
                report.present.append(job)
        finally:
            bar.close()
        return report


def prepare_output(folder: str | Path) -> Path:
    """The output folder, created and proven writable before any work (one line otherwise)."""
    return check_writable_folder(folder, "the output folder (-o/--output)")
