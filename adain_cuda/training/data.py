"""Training data: recursive image discovery, an endless shuffled (and sharded) sampler, and a
dataset that resizes, crops and survives bad files.

Every sample is identified by its position in one endless stream of shuffled indices (permutation
after permutation, from one seed). A global batch is a run of consecutive positions and a rank of
a multi-process run takes its slice of it, so the stream - and each sample's random crop, seeded by
its position - is the same whatever the number of processes, and resuming at iteration i restarts
exactly at position i * batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from ..images import imaging
from ..images.imaging import ImageError, find_images

__all__ = ["ImageFolder", "EndlessSampler", "find_images", "collate"]

MIN_SIDE = 16  # images smaller than this are skipped: too little content to learn from


class EndlessSampler(Sampler):
    """Yields (index, position) forever: shuffled permutations of ``size`` indices, one after the
    other, from ``seed``; this rank's share of each global batch, starting at ``start``."""

    def __init__(self, size: int, *, batch: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        if batch % world:
            raise ValueError(f"the batch size {batch} must be divisible by the number of processes {world}")
        self.size, self.batch, self.seed, self.start = size, batch, seed, start
        self.rank, self.world = rank, world
        self.local = batch // world

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        epoch, perm = -1, torch.empty(0, dtype=torch.long)
        while True:
            # this rank's slice of the global batch starting at `position`
            for k in range(self.rank * self.local, (self.rank + 1) * self.local):
                p = position + k
                if p // self.size != epoch:
                    epoch = p // self.size
                    perm = self._permutation(epoch)
                yield int(perm[p % self.size]), p
            position += self.batch

    def __len__(self) -> int:  # endless; DataLoader only needs this for its progress reporting
        return 2**62


class ImageFolder(Dataset):
    """Images resized so the shorter side is ``size`` (aspect kept) and randomly cropped to
    ``crop``. A file that cannot be used (unreadable, truncated, tiny) is replaced by the next one
    in the folder and reported with the sample, so the caller can warn once per file."""

    def __init__(self, files: list[Path], *, size: int = 512, crop: int = 256, seed: int = 0):
        if crop > size > 0:
            raise ValueError(f"crop {crop} is larger than the resize target {size}")
        self.files, self.size, self.crop, self.seed = files, size, crop, seed

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path, position: int) -> torch.Tensor:
        img = imaging.load_image(path)
        if min(img.shape[-2:]) < MIN_SIDE:
            raise ImageError(f"{path}: too small ({img.shape[-1]}x{img.shape[-2]})")
        img = imaging.resize_shorter(img, self.size)
        h, w = img.shape[-2:]
        if min(h, w) < self.crop:  # size 0 keeps small images: scale up to the crop
            img = imaging.resize_shorter(img, self.crop)
            h, w = img.shape[-2:]
        g = torch.Generator().manual_seed(self.seed * 7_919 + position)  # same crop on any rank/worker
        top = int(torch.randint(0, h - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(0, w - self.crop + 1, (1,), generator=g))
        return img[:, top : top + self.crop, left : left + self.crop].contiguous()

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, list[str]]:
        index, position = key
        skipped: list[str] = []
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                return self._load(path, position), skipped
            except ImageError as exc:
                skipped.append(str(exc))
        raise ImageError(f"none of the {len(self.files)} images could be used; first problem: {skipped[0]}")


def collate(samples: list[tuple[torch.Tensor, list[str]]]) -> tuple[torch.Tensor, list[str]]:
    return torch.stack([s[0] for s in samples]), [msg for s in samples for msg in s[1]]
