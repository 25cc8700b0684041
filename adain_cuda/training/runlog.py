"""What a training run reports: a progress bar, ``log.csv``, TensorBoard scalars and the files it
had to skip. Only the main process (rank 0) writes; the others stay silent."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any, TextIO

from ..models import STYLE_LAYERS

__all__ = ["LOG_COLUMNS", "RunLog"]

logger = logging.getLogger(__name__)

LOG_COLUMNS = [
    "iteration",
    "loss",
    "content",
    "style",
    *[f"style_{n}" for n in STYLE_LAYERS],
    "lr",
    "images_per_s",
    "time",
]


class RunLog:
    def __init__(
        self,
        folder: Path,
        *,
        main: bool,
        tensorboard: bool,
        progress: bool,
        total: int,
        initial: int,
        tensorboard_dir: Path | None = None,
    ) -> None:
        from tqdm.auto import tqdm

        self.folder, self.main = folder, main
        self.tensorboard_dir = tensorboard_dir or folder / "tensorboard"
        self.bad_files: set[str] = set()
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc="training",
            unit="it",
            disable=not (main and progress),
            dynamic_ncols=True,
        )
        self._writer = self._tensorboard() if main and tensorboard else None
        self._file: TextIO | None = None
        self._csv: Any = None  # a csv writer (the csv module exports no type for it)
        self._path = folder / "log.csv"
        self._created = False

    def skipped(self, messages: list[str]) -> None:
        """Reports each unusable file once."""
        for message in messages:
            if message not in self.bad_files:
                self.bad_files.add(message)
                if self.main:
                    logger.warning(f"skipped: {message}")

    def advance(self) -> None:
        self.bar.update(1)

    def record(self, iteration: int, values: dict[str, float], wall_time: float) -> None:
        """One log row: the bar's postfix, a CSV row and the TensorBoard scalars."""
        if not self.main:
            return
        if not all(math.isfinite(values[k]) for k in ("loss", "content", "style")):
            logger.warning(f"non-finite loss at iteration {iteration}")
        self.bar.set_postfix(
            content=f"{values['content']:.3f}", style=f"{values['style']:.3f}", img_s=f"{values['images_per_s']:.1f}"
        )
        if self._file is None:  # opened at the first row, so a run that logs nothing leaves no file
            self._open_csv()
        self._csv.writerow([iteration, *(values[c] for c in LOG_COLUMNS[1:-1]), wall_time])
        if self._file is not None:
            self._file.flush()
        if self._writer is not None:
            for key in ("loss", "content", "style", *(f"style_{n}" for n in STYLE_LAYERS)):
                tag = "loss/total" if key == "loss" else f"loss/{key}"
                self._writer.add_scalar(tag, values[key], iteration)
            self._writer.add_scalar("lr", values["lr"], iteration)
            self._writer.add_scalar("throughput/images_per_s", values["images_per_s"], iteration)

    def image(self, tag: str, image, iteration: int) -> None:
        """A (3, H, W) image in [0, 1] to TensorBoard (the sample grids)."""
        if self._writer is not None:
            self._writer.add_image(tag, image, iteration)

    def _open_csv(self) -> None:
        new = not self._path.exists() or self._path.stat().st_size == 0
        self._file = handle = open(self._path, "a", newline="")
        self._created = new
        self._csv = csv.writer(handle)
        if new:
            self._csv.writerow(LOG_COLUMNS)

    def close(self) -> None:
        self.bar.close()
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # a full disk: what could not be flushed is lost, the run still ends cleanly
                pass
            if self._created and self._path.stat().st_size == 0:
                self._path.unlink()  # a header that never reached the disk leaves no empty log
        if self._writer is not None:
            self._writer.close()

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info("TensorBoard logging is off: pip install 'adain_cuda[train]' (the CSV log is still written)")
            return None
        return SummaryWriter(str(self.tensorboard_dir))
