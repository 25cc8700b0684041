"""What a dataset stylization will do, decided before any image is read: the jobs (content file,
version, style, alpha, output name), the other files to copy, and the batches.

Everything here is a pure function of the content tree, the options and the number of styles:

* the style and alpha of version k of a content file come from the sha256 of (seed, k, its
  relative path), so they do not depend on the order of the work, the number of processes or on
  resumption;
* the jobs are cut into chunks of ``batch_size`` consecutive jobs *before* the chunks are dealt
  to the processes (chunk i to rank i mod world), and a chunk's jobs are computed in groups of
  equal image size inside the chunk: every image is computed in the same company however the
  work is split or resumed, so the output bytes are the same.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .._files import is_temporary
from ..images.imaging import IMAGE_EXTENSIONS, image_format

__all__ = ["DatasetPlan", "Job", "VERSION_SUFFIX", "check_roots", "parse_extensions", "pick_style", "plan_dataset"]

# With several versions per image, version k of "a/b.jpg" is "a/b_v{k}.jpg" (k from 0).
VERSION_SUFFIX = "_v{}"


@dataclass(frozen=True)
class Job:
    """One output: version ``version`` of content file ``content`` (relative POSIX paths) with
    style ``style`` (an index into the bank) at ``alpha``, written to ``output``."""

    content: str
    version: int
    style: int
    alpha: float
    output: str


@dataclass
class DatasetPlan:
    content_root: Path
    out_root: Path
    jobs: list[Job]  # in (content, version) order
    others: list[str] = field(default_factory=list)  # files copied as they are
    batch_size: int = 8

    def chunks(self) -> list[range]:
        """The jobs cut into runs of ``batch_size``: the unit of company, formed before sharding."""
        return [range(i, min(i + self.batch_size, len(self.jobs))) for i in range(0, len(self.jobs), self.batch_size)]

    def shard(self, rank: int, world: int) -> list[range]:
        """This process's chunks: chunk i goes to rank i mod world."""
        return self.chunks()[rank::world]


def pick_style(seed: int, content: str, version: int, styles: int, alpha: tuple[float, float]) -> tuple[int, float]:
    """The style index and alpha of version ``version`` of ``content``: from the sha256 of
    (seed, version, relative path), uniform over the styles and over [low, high]; alpha is
    rounded to 6 decimals so that the manifest states exactly what was used."""
    digest = hashlib.sha256(f"{seed}\0{version}\0{content}".encode()).digest()
    style = int.from_bytes(digest[:8], "big") % styles
    low, high = alpha
    if low == high:
        return style, float(low)
    u = int.from_bytes(digest[8:16], "big") / 2.0**64
    return style, round(low + (high - low) * u, 6)


def parse_extensions(text: str | None) -> set[str]:
    """'jpg,PNG,.jpeg' -> {'.jpg', '.png', '.jpeg'}; None: every image extension the package reads."""
    if text is None:
        return set(IMAGE_EXTENSIONS)
    found = {("." + e.strip().lstrip(".")).lower() for e in text.split(",") if e.strip()}
    unknown = sorted(found - IMAGE_EXTENSIONS)
    if not found or unknown:
        known = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ValueError(f"`extensions` {text!r}: {', '.join(unknown) or 'none given'}; use some of {known}")
    return found


def _output_name(content: str, version: int, versions: int, save_ext: str | None) -> str:
    path = PurePosixPath(content)
    suffix = save_ext if save_ext is not None else path.suffix
    stem = path.stem + (VERSION_SUFFIX.format(version) if versions > 1 else "")
    return str(path.with_name(stem + suffix))


def check_roots(content_root: Path, out_root: Path) -> tuple[Path, Path]:
    """Both roots resolved; the content root must be a folder and the two must not overlap."""
    if not content_root.is_dir():
        raise ValueError(f"{content_root}: the content root is not a folder")
    content, out = content_root.resolve(), out_root.resolve()
    if out == content or content in out.parents or out in content.parents:
        raise ValueError(
            f"the output root {out_root} and the content root {content_root} overlap; "
            "write to a folder outside the content tree (nothing is ever written into it)"
        )
    return content, out


def _walk(root: Path) -> list[str]:
    """Every file below ``root`` as a sorted relative POSIX path (our temporary files left out).
    Linked folders are followed (datasets are often assembled from links), each real folder once,
    so a link back up the tree cannot loop."""
    found = []
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()  # a folder reached under two names keeps the first in sorted order
        for name in files:
            if not is_temporary(name):
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(found)


def plan_dataset(
    content_root: str | Path,
    out_root: str | Path,
    *,
    styles: int,
    num_styles: int = 1,
    seed: int = 0,
    alpha: tuple[float, float] = (1.0, 1.0),
    extensions: set[str] | None = None,
    save_ext: str | None = None,
    batch_size: int = 8,
    copy_other: bool = True,
    reserved: set[str] = frozenset(),  # type: ignore[assignment]
) -> DatasetPlan:
    """The plan of :func:`~adain_cuda.datasets.stylize_dataset` (see the module's notes)."""
    if num_styles < 1 or batch_size < 1 or styles < 1:
        raise ValueError("`num_styles`, `batch_size` and the number of styles must be at least 1")
    low, high = alpha
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"`alpha` must be a value or a range LOW:HIGH within [0, 1], got {low}:{high}")
    if save_ext is not None:
        save_ext = "." + save_ext.lstrip(".").lower()
        image_format("x" + save_ext)  # a format the package can write, else a clear error
    wanted = extensions if extensions is not None else set(IMAGE_EXTENSIONS)
    content, out = check_roots(Path(content_root), Path(out_root))
    files = _walk(content)
    images = [f for f in files if PurePosixPath(f).suffix.lower() in wanted]
    if not images:
        raise ValueError(f"{content_root}: no images found (searched recursively for {', '.join(sorted(wanted))})")
    jobs = []
    for name in images:
        for version in range(num_styles):
            style, a = pick_style(seed, name, version, styles, (low, high))
            jobs.append(Job(name, version, style, a, _output_name(name, version, num_styles, save_ext)))
    others = [f for f in files if PurePosixPath(f).suffix.lower() not in wanted] if copy_other else []
    _check_distinct(jobs, others, reserved)
    return DatasetPlan(Path(content_root), Path(out_root), jobs, others, batch_size)


def _check_distinct(jobs: list[Job], others: list[str], reserved: set[str]) -> None:
    """Two inputs must never share an output name (a.jpg and a.png with --save-ext png, or an
    image's new name that a copied file already has), nor take a name the run writes itself."""
    for name in [j.output for j in jobs] + others:
        if name.split("/")[0] in reserved:
            raise ValueError(
                f"{name} in the content root would be written where the run writes its own "
                f"{name.split('/')[0]}; move it, or leave other files out (`copy_other` off)"
            )
    owner: dict[str, str] = {}
    for source, output in [(j.content, j.output) for j in jobs] + [(o, o) for o in others]:
        if owner.setdefault(output, source) != source:
            raise ValueError(
                f"{owner[output]} and {source} would both be written as {output}; "
                "keep the input formats (no `save_ext`) or rename one of them"
            )
