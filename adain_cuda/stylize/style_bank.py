"""A style bank: the relu4_1 statistics of every image of a style folder, encoded once.

    bank = build_style_bank(stylizer, "paintings", style_size=512)   # or: adain-cuda style-bank
    bank.save("bank.pt")
    bank = StyleBank.load("bank.pt", stylizer=stylizer)               # refuses other encoder weights
    mean, std = bank.stats(3)                                        # (1, C) each, for transfer()

Styles are read one at a time (a folder of 80,000 paintings never sits in memory) and encoded in
batches of images that share a size after resizing. Each entry keeps the style's path relative to
the folder and the sha256 of its file; the bank records the encoder weights' sha256, so statistics
made with other weights are refused instead of silently mixed. A bank file holds tensors, strings
and numbers only and is read with ``weights_only=True``: loading one runs no code.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .._files import atomic_write
from ..images import imaging
from ..images.imaging import ImageError
from ..models.weights import sha256_of

__all__ = ["BANK_FORMAT", "StyleBank", "StyleBankError", "bank_for", "build_style_bank", "encoder_sha256"]

logger = logging.getLogger(__name__)
BANK_FORMAT = "adain_cuda.style_bank/1"


class StyleBankError(ValueError):
    """A bank file that cannot be used: not a bank, damaged, or made with other encoder weights."""


def encoder_sha256(state: dict[str, Tensor]) -> str:
    """The sha256 of an encoder's weights (keys in order, values as contiguous float32 bytes)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class StyleBank:
    """Statistics of K styles: ``mean`` and ``std`` (K, C) float32, with each style's relative
    ``paths`` and file ``sha256``; the settings they were made with; the encoder's sha256; the
    files that could not be used (``skipped``: (path, reason))."""

    paths: list[str]
    sha256: list[str]
    mean: Tensor
    std: Tensor
    style_size: int
    crop: bool
    encoder: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def stats(self, index: int) -> tuple[Tensor, Tensor]:
        """Style ``index``'s (mean, std), (1, C) each: what :meth:`Stylizer.transfer` takes."""
        return self.mean[index : index + 1], self.std[index : index + 1]

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Writes the bank atomically (exclusively unless ``overwrite``)."""
        state = {
            "format": BANK_FORMAT,
            "paths": list(self.paths),
            "sha256": list(self.sha256),
            "mean": self.mean.float().cpu().contiguous(),
            "std": self.std.float().cpu().contiguous(),
            "style_size": int(self.style_size),
            "crop": bool(self.crop),
            "encoder": self.encoder,
            "skipped": [[p, r] for p, r in self.skipped],
        }
        return atomic_write(path, lambda tmp: torch.save(state, tmp), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, *, stylizer=None) -> StyleBank:
        """Reads a bank (no code runs), checks its contents, and with ``stylizer`` refuses a bank
        made with other encoder weights."""
        path = Path(path)
        if not path.is_file():
            raise StyleBankError(f"{path}: no such style bank")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - every way a file can be broken or unsafe
            raise StyleBankError(f"{path}: not a readable style bank ({type(exc).__name__})") from exc
        if not isinstance(state, dict) or state.get("format") != BANK_FORMAT:
            raise StyleBankError(f"{path}: not a style bank (make one with `adain-cuda style-bank`)")
        for name in ("mean", "std"):
            t = state.get(name)
            if not isinstance(t, Tensor) or t.dtype != torch.float32 or t.dim() != 2:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise StyleBankError(f"{path}: damaged style bank ({name} is {got}, expected (K, C) float32)")
        bank = cls(
            paths=list(state.get("paths", [])),
            sha256=list(state.get("sha256", [])),
            mean=state["mean"],
            std=state["std"],
            style_size=int(state.get("style_size", 0)),
            crop=bool(state.get("crop", False)),
            encoder=str(state.get("encoder", "")),
            skipped=[(str(p), str(r)) for p, r in state.get("skipped", [])],
        )
        bank._check(path)
        if stylizer is not None and bank.encoder != stylizer.encoder_sha256:
            raise StyleBankError(
                f"{path} was made with other encoder weights (sha256 {bank.encoder[:12]}..., these are "
                f"{stylizer.encoder_sha256[:12]}...); make the bank again with these weights"
            )
        return bank

    def _check(self, path: Path) -> None:
        k = len(self.paths)
        for name, t in (("mean", self.mean), ("std", self.std)):
            if t.shape[0] != k:
                raise StyleBankError(f"{path}: damaged style bank ({name} has {t.shape[0]} rows for {k} styles)")
            if not torch.isfinite(t).all():
                raise StyleBankError(f"{path}: damaged style bank ({name} has NaN or infinite values)")
        if self.mean.shape != self.std.shape or len(self.sha256) != k or k == 0:
            raise StyleBankError(f"{path}: damaged style bank (its lists and statistics disagree, or it is empty)")


def _batches(files: list[Path], root: Path, stylizer, size: int, crop: bool, batch_size: int, skipped: list):
    """(indices, images) batches of styles that share a size after resizing, read one at a time;
    at most ``4 * batch_size`` images wait in memory."""
    from .stylizer import check_image_size  # here: the stylizer module imports this one

    pending: dict[tuple[int, int], list[tuple[int, Tensor]]] = {}
    waiting = 0
    for index, path in enumerate(files):
        try:  # (check_image_size: a batch with one too-small style would fail as a whole)
            image = stylizer.prepare_image(path, size, crop)
            check_image_size(image[None], "style")
        except (ImageError, ValueError, OSError) as exc:
            skipped.append((path.relative_to(root).as_posix(), str(exc)))
            continue
        group = pending.setdefault(tuple(image.shape[-2:]), [])
        group.append((index, image))
        waiting += 1
        if len(group) == batch_size or waiting >= 4 * batch_size:
            key = tuple(image.shape[-2:]) if len(group) == batch_size else max(pending, key=lambda k: len(pending[k]))
            ready = pending.pop(key)
            waiting -= len(ready)
            yield ready
    for group in pending.values():
        yield group


def build_style_bank(
    stylizer,
    style_dir: str | Path,
    *,
    style_size: int = 512,
    crop: bool = False,
    batch_size: int = 8,
    progress: bool = True,
) -> StyleBank:
    """Encodes every image below ``style_dir`` once (relu4_1 mean and std at ``style_size``);
    unreadable or too small images are skipped and listed in ``skipped``."""
    from tqdm.auto import tqdm

    root = Path(style_dir)
    files = imaging.find_images(root)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
    skipped: list[tuple[str, str]] = []
    found: dict[int, tuple[Tensor, Tensor]] = {}
    bar = tqdm(total=len(files), desc="style bank", unit="style", disable=not progress)
    try:
        for group in _batches(files, root, stylizer, style_size, crop, batch_size, skipped):
            mean, std = stylizer.encode_style(torch.stack([image for _, image in group]))
            for row, (index, _) in enumerate(group):
                found[index] = (mean[row].float().cpu(), std[row].float().cpu())
            bar.update(len(group))
    finally:
        bar.close()
    order = sorted(found)
    if not order:
        raise StyleBankError(f"{root}: none of the {len(files)} style images could be used")
    for path, reason in skipped:
        logger.warning(f"skipped: {path}: {reason}")
    return StyleBank(
        paths=[files[i].relative_to(root).as_posix() for i in order],
        sha256=[sha256_of(files[i]) for i in order],
        mean=torch.stack([found[i][0] for i in order]),
        std=torch.stack([found[i][1] for i in order]),
        style_size=style_size,
        crop=crop,
        encoder=stylizer.encoder_sha256,
        skipped=skipped,
    )


def bank_for(styles: StyleBank | str | Path, stylizer, *, style_size: int = 512, crop: bool = False) -> StyleBank:
    """The styles as a bank for ``stylizer``: a StyleBank as given, a bank file (no code runs), or
    a folder of style images encoded now; a bank of other encoder weights is refused."""
    if isinstance(styles, StyleBank):
        if styles.encoder != stylizer.encoder_sha256:
            raise StyleBankError("the style bank was made with other encoder weights; make it again with these")
        return styles
    path = Path(styles)
    if path.is_dir():
        return build_style_bank(stylizer, path, style_size=style_size, crop=crop)
    return StyleBank.load(path, stylizer=stylizer)
