"""Runs a dataset plan (plan.py): this process's chunks read by DataLoader workers, each chunk's
images of one size stylized together, the results written atomically by a writer thread, then
the manifest and the failure list merged from the disk.

Resuming is the same call again: a job whose output exists is done (``overwrite`` redoes it), a
chunk with every output present is not even read, and a chunk with some missing is computed
whole (the same company as the first time) with only the missing outputs written. The manifest
(manifest.csv) lists every job whose output exists, in plan order, so it is the same bytes
however many processes made the files and however often the run was resumed.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .._device import place
from .._files import FileExists, atomic_write, check_writable_folder, is_temporary
from .._signals import deferred_interrupts
from ..images import imaging
from ..images.imaging import ImageError
from ..stylize import Stylizer
from ..stylize.style_bank import StyleBank, bank_for
from .plan import DatasetPlan, Job, check_roots, parse_extensions, plan_dataset

__all__ = ["DatasetReport", "MANIFEST", "FAILED", "stylize_dataset"]

logger = logging.getLogger(__name__)
MANIFEST, FAILED = "manifest.csv", "failed.csv"
PARTS = ".adain-dataset"  # per-rank failure lists, merged and removed at the end
DEFAULT_BATCH_CUDA = 8
# Images above this many pixels are computed alone (a batch of them would need their memory at once).
LARGE_PIXELS = 2048 * 2048


@dataclass
class DatasetReport:
    """What one call did: outputs ``written`` now, ``done_before`` (present already and kept),
    ``failed`` jobs (content, version, reason), other files ``copied``; ``interrupted`` when a
    signal stopped it early; ``manifest`` when this process wrote the merged lists."""

    written: int = 0
    done_before: int = 0
    copied: int = 0
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    interrupted: bool = False
    manifest: Path | None = None
    skipped_styles: list[tuple[str, str]] = field(default_factory=list)  # of a style folder

    def summary(self) -> str:
        parts = [f"{self.written} written", f"{self.done_before} already done", f"{len(self.failed)} failed"]
        if self.copied:
            parts.append(f"{self.copied} other files copied")
        if self.skipped_styles:
            parts.append(f"{len(self.skipped_styles)} unusable style images skipped")
        text = "stylize-dataset: " + ", ".join(parts)
        if self.interrupted:
            text += "; interrupted: run the same command again to finish"
        elif self.manifest is not None:
            text += f"; manifest: {self.manifest}"
        return text


class _Chunks(Dataset):
    """Item i: the distinct content images of this process's chunk i that still have work, read
    and resized (in a DataLoader worker): {content: (3, H, W) float32 or the reason it failed}."""

    def __init__(self, plan: DatasetPlan, chunks: list[list[Job]], size: int, crop: bool) -> None:
        self.root, self.chunks, self.size, self.crop = plan.content_root, chunks, size, crop

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict[str, Tensor | str]:
        images: dict[str, Tensor | str] = {}
        for job in self.chunks[i]:
            if job.content not in images:
                images[job.content] = read_content(self.root / job.content, self.size, self.crop)
        return images


def read_content(path: Path, size: int, crop: bool) -> Tensor | str:
    """The content image resized as the options say, or why it cannot be used."""
    try:
        img = imaging.prepare(imaging.load_image(path), size, crop)
        if min(img.shape[-2:]) < 9:
            return f"{img.shape[-1]}x{img.shape[-2]} is too small for the encoder (at least 9x9)"
        return img
    except (ImageError, OSError, ValueError) as exc:
        reason = str(exc)  # the manifest's content column names the file already
        return reason.removeprefix(f"{path}: ")


def _groups(jobs: list[Job], images: dict[str, Tensor | str]) -> Iterator[list[Job]]:
    """A chunk's jobs in groups of equal image size (in chunk order); large images alone."""
    by_size: dict[tuple[int, int], list[Job]] = {}
    for job in jobs:
        img = images[job.content]
        if isinstance(img, Tensor):
            h, w = img.shape[-2:]
            if h * w > LARGE_PIXELS:
                yield [job]
            else:
                by_size.setdefault((h, w), []).append(job)
    yield from by_size.values()


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class _Run:
    """One process's share of a plan."""

    def __init__(self, stylizer: Stylizer, bank: StyleBank, plan: DatasetPlan, options: dict, report: DatasetReport):
        self.stylizer, self.bank, self.plan, self.o, self.report = stylizer, bank, plan, options, report
        self.writes: list[tuple[Job, Future]] = []

    def pending(self, job: Job) -> bool:
        return self.o["overwrite"] or not (self.plan.out_root / job.output).exists()

    def stylize(self, jobs: list[Job], images: dict[str, Tensor | str]) -> Tensor:
        contents = list(dict.fromkeys(j.content for j in jobs))
        x = torch.stack([images[c] for c in contents])  # type: ignore[misc]
        self.stylizer.check_memory(x.shape[-2], x.shape[-1], len(jobs))
        index = torch.tensor([contents.index(j.content) for j in jobs])
        styles = torch.tensor([j.style for j in jobs])
        alpha = torch.tensor([j.alpha for j in jobs])
        return self.stylizer.transfer_each(x, self.bank.mean[styles], self.bank.std[styles], alpha, content_index=index)

    def compute(self, jobs: list[Job], images: dict[str, Tensor | str]) -> list[tuple[Job, Tensor | str]]:
        """The group's results; out of memory (or too large for the device): each job alone, then
        at the fallback size if one is given."""
        try:
            return list(zip(jobs, self.stylize(jobs, images)))
        except (RuntimeError, ImageError) as exc:
            if not (_out_of_memory(exc) or isinstance(exc, ImageError)):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(jobs) > 1:
                return [r for job in jobs for r in self.compute([job], images)]
            job = jobs[0]
            img = images[job.content]
            assert isinstance(img, Tensor)
            fallback = self.o["fallback_size"]
            if fallback and min(img.shape[-2:]) > fallback:
                smaller: dict[str, Tensor | str] = {job.content: imaging.resize_shorter(img, fallback)}
                logger.warning(
                    f"{job.content}: out of memory at {img.shape[-1]}x{img.shape[-2]}; retried at {fallback} px"
                )
                return self.compute(jobs, smaller)
            hint = "; give a --fallback-size to retry such images smaller" if not fallback else ""
            return [(job, f"out of memory at {img.shape[-1]}x{img.shape[-2]}{hint}")]

    def write(self, pool: ThreadPoolExecutor, job: Job, result: Tensor) -> None:
        if not torch.isfinite(result).all():
            self.report.failed.append((job.content, job.version, "the result has NaN or infinite values; not written"))
            return
        pil = imaging.to_pil(result)
        path = self.plan.out_root / job.output
        fmt = imaging.image_format(path)
        options = {"quality": self.o["quality"]} if fmt == "JPEG" else {}

        def save(tmp: Path) -> None:
            pil.save(tmp, format=fmt, **options)

        self.writes.append((job, pool.submit(atomic_write, path, save, overwrite=self.o["overwrite"])))

    def collect(self, wait_all: bool) -> None:
        """Counts the finished writes (all of them with ``wait_all``); a failed write is listed."""
        kept = []
        for job, future in self.writes:
            if not wait_all and not future.done():
                kept.append((job, future))
                continue
            try:
                future.result()
                self.report.written += 1
            except FileExists:  # written meanwhile by another run: done
                self.report.done_before += 1
            except OSError as exc:
                self.report.failed.append((job.content, job.version, str(exc)))
        self.writes = kept


def _barrier() -> None:
    """Waits for every process of the launch (nothing to wait for in a single process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def stylize_dataset(
    stylizer: Stylizer,
    content_root: str | Path,
    styles: StyleBank | str | Path,
    out_root: str | Path,
    *,
    num_styles: int = 1,
    seed: int = 0,
    alpha: float | tuple[float, float] = 1.0,
    content_size: int = 0,
    crop: bool = False,
    style_size: int = 512,
    extensions: str | None = None,
    save_ext: str | None = None,
    quality: int = 95,
    batch_size: int | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    copy_other: bool = True,
    fallback_size: int = 0,
    progress: bool = True,
) -> DatasetReport:
    """Stylizes every image below ``content_root`` into the same tree under ``out_root`` (see
    docs/datasets.md): ``num_styles`` versions each, styles from a bank (a StyleBank, a bank file
    or a folder of style images), alpha fixed or drawn from a (low, high) range, all reproducible
    from ``seed``. ``batch_size`` (default 8 on CUDA, 1 on the CPU) jobs form one chunk, whose
    images of one size are computed together; the same bytes need the same batch size. Under
    torchrun each process takes its share; after all have finished, the first writes manifest.csv
    and failed.csv at the top of ``out_root``."""
    if not 1 <= quality <= 100:
        raise ValueError(f"`quality` must be in 1..100, got {quality}")
    if content_size < 0 or fallback_size < 0:
        raise ValueError("`content_size` and `fallback_size` must be 0 (keep) or positive")
    bounds = alpha if isinstance(alpha, tuple) else (alpha, alpha)
    if batch_size is None:
        # On a CPU, images one at a time measured 8% faster than batches of 4 (the larger
        # working set costs more than batching saves); a GPU needs batches to fill it.
        batch_size = DEFAULT_BATCH_CUDA if stylizer.device.type == "cuda" else 1
    out = Path(out_root)
    check_roots(Path(content_root), out)  # before anything is created
    placement = place(str(stylizer.device))  # joins a torchrun launch's process group
    rank, world = placement.rank, placement.world
    bank = bank_for(styles, stylizer, style_size=style_size)
    plan = plan_dataset(
        content_root,
        out,
        styles=len(bank),
        num_styles=num_styles,
        seed=seed,
        alpha=(float(bounds[0]), float(bounds[1])),
        extensions=parse_extensions(extensions),
        save_ext=save_ext,
        batch_size=batch_size,
        copy_other=copy_other,
        reserved={MANIFEST, FAILED, PARTS},
    )
    check_writable_folder(out, "the output root")  # the plan holds: now the first write
    options = dict(overwrite=overwrite, quality=quality, fallback_size=fallback_size)
    report = DatasetReport(skipped_styles=list(bank.skipped))
    run = _Run(stylizer, bank, plan, options, report)
    if rank == 0:
        report.copied = _copy_others(plan, overwrite)
    chunks = []
    for chunk in plan.shard(rank, world):
        jobs = [plan.jobs[i] for i in chunk]
        todo = [j for j in jobs if run.pending(j)]
        report.done_before += len(jobs) - len(todo)
        if todo:
            chunks.append((jobs, todo))
    if workers is None:
        workers = max(1, min(8, (os.cpu_count() or 2) // max(1, world) - 1))
    _process(run, chunks, content_size, crop, workers, progress and rank == 0)
    _write_part(plan, rank, world, report)
    _barrier()
    if rank == 0 and not report.interrupted:
        report.manifest = _merge(plan, bank, world)
    return report


def _process(run: _Run, chunks: list[tuple[list[Job], list[Job]]], size: int, crop: bool, workers: int, bar: bool):
    from tqdm.auto import tqdm

    data = _Chunks(run.plan, [jobs for jobs, _ in chunks], size, crop)
    loader = DataLoader(data, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None)
    total = sum(len(todo) for _, todo in chunks)
    progress = tqdm(total=total, desc="stylize-dataset", unit="img", disable=not bar, smoothing=0.1)
    with deferred_interrupts() as stop, ThreadPoolExecutor(max_workers=2) as pool:
        try:
            for (jobs, todo), images in zip(chunks, loader):
                for job in todo:
                    img = images[job.content]
                    if isinstance(img, str):
                        run.report.failed.append((job.content, job.version, img))
                for group in _groups(jobs, images):
                    wanted = [j for j in group if j in todo]
                    if not wanted:
                        continue
                    for job, result in run.compute(group, images):  # the whole group: the same company
                        if job not in wanted:
                            continue
                        if isinstance(result, str):
                            run.report.failed.append((job.content, job.version, result))
                        else:
                            run.write(pool, job, result)
                progress.update(len(todo))
                run.collect(wait_all=False)
                if stop.requested:
                    run.report.interrupted = True
                    break
        except RuntimeError:
            if not stop.requested:  # a signal also ends the DataLoader's workers: that is the stop
                raise
            run.report.interrupted = True
        finally:
            progress.close()
            run.collect(wait_all=True)


def _copy_others(plan: DatasetPlan, overwrite: bool) -> int:
    copied = 0
    for name in plan.others:
        target = plan.out_root / name
        if target.exists() and not overwrite:
            continue
        try:
            atomic_write(target, partial(_copy_file, plan.content_root / name), overwrite=overwrite)
            copied += 1
        except FileExists:
            pass
    return copied


def _copy_file(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def _csv(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write_part(plan: DatasetPlan, rank: int, world: int, report: DatasetReport) -> None:
    """This process's failures, for the merge."""
    rows = [[c, v, r] for c, v, r in report.failed]
    path = plan.out_root / PARTS / f"failed.{rank}-of-{world}.csv"
    atomic_write(path, lambda tmp: tmp.write_text(_csv(rows), encoding="utf-8"))


def _merge(plan: DatasetPlan, bank: StyleBank, world: int) -> Path:
    """manifest.csv (every job whose output exists, in plan order) and failed.csv (this run's
    failures of jobs still without an output, from every process's part), at the top of the
    output root; the parts are removed."""
    parts = plan.out_root / PARTS
    failures: dict[tuple[str, int], str] = {}
    for rank in range(world):
        path = parts / f"failed.{rank}-of-{world}.csv"
        if path.exists():
            for content, version, reason in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
                failures[(content, int(version))] = reason
    rows: list[list[object]] = [["content", "version", "style", "alpha", "output"]]
    failed: list[list[object]] = [["content", "version", "reason"]]
    for job in plan.jobs:
        if (plan.out_root / job.output).exists():
            rows.append([job.content, job.version, bank.paths[job.style], str(job.alpha), job.output])
        elif (job.content, job.version) in failures:
            failed.append([job.content, job.version, failures[(job.content, job.version)]])
    manifest = atomic_write(plan.out_root / MANIFEST, lambda tmp: tmp.write_text(_csv(rows), encoding="utf-8"))
    atomic_write(plan.out_root / FAILED, lambda tmp: tmp.write_text(_csv(failed), encoding="utf-8"))
    shutil.rmtree(parts, ignore_errors=True)
    _remove_stale_temporaries(plan)
    return manifest


def _remove_stale_temporaries(plan: DatasetPlan) -> None:
    """The temporary files a killed run left half-written in the output folders. Called once
    every process of this launch has finished, so none of them is still being written (an
    unrelated run writing into the same folders at this moment would lose one write and report
    it; its rerun redoes it)."""
    folders = {(plan.out_root / name).parent for name in [j.output for j in plan.jobs] + plan.others}
    for folder in folders | {plan.out_root}:
        if folder.is_dir():
            for entry in os.scandir(folder):
                if is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
                    Path(entry.path).unlink(missing_ok=True)
