"""The published weight files: where they come from, where they are cached, how they are fetched.

Files are cached in ``$ADAIN_CUDA_HOME`` (default: ``$XDG_CACHE_HOME/adain_cuda``, i.e.
``~/.cache/adain_cuda``). A download goes to a temporary file in that folder, is checked against
its published sha256, and only then renamed into place, so an interrupted or corrupted transfer
never leaves a bad file under the final name. A cached file is checked against the published size
and sha256 when it is used (the result is remembered beside it while the file is unchanged).
``ADAIN_CUDA_OFFLINE=1`` forbids downloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .._files import atomic_path, atomic_write
from .networks import WeightsError

__all__ = [
    "REGISTRY",
    "WeightFile",
    "cache_dir",
    "cached_state",
    "download",
    "offline_mode",
    "resolve",
    "sha256_of",
    "verified_sha256",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    key: str
    filename: str
    url: str
    sha256: str
    description: str
    parameter: str  # the argument (and, on the command line, the option) that points at a local copy
    size: int | None = None  # bytes, where known


# Published by the community PyTorch port (naoto0804/pytorch-AdaIN, release v0.0.0).
REGISTRY = {
    "vgg": WeightFile(
        "vgg",
        "vgg_normalised.pth",
        "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/vgg_normalised.pth",
        "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
        "VGG-19 encoder, normalised (Torch7 conversion)",
        "vgg",
        80_102_481,
    ),
    "decoder": WeightFile(
        "decoder",
        "decoder.pth",
        "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/decoder.pth",
        "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
        "AdaIN decoder trained on MS-COCO and WikiArt",
        "decoder",
    ),
}


def cache_dir() -> Path:
    if os.environ.get("ADAIN_CUDA_HOME"):
        return Path(os.environ["ADAIN_CUDA_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adain_cuda"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_fix(spec: WeightFile, dest: Path) -> str:
    return (
        f"Download {spec.url} by hand and save it as {dest} (or set ADAIN_CUDA_HOME to the "
        f"folder that holds it), or pass the path of a local copy as `{spec.parameter}`."
    )


def offline_mode() -> bool:
    """``ADAIN_CUDA_OFFLINE`` set to 1 (or true/yes/on): no network connection is ever opened."""
    return os.environ.get("ADAIN_CUDA_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download(spec: WeightFile, *, directory: Path | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetches ``spec`` into the cache, verified; returns its path. Raises WeightsError, also
    (before any connection) when ``ADAIN_CUDA_OFFLINE`` forbids downloads."""
    directory = Path(directory) if directory is not None else cache_dir()
    dest = directory / spec.filename
    if offline_mode():
        raise WeightsError(
            f"not downloading {spec.filename}: ADAIN_CUDA_OFFLINE is set (unset it to download). "
            f"{_how_to_fix(spec, dest)}"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"cannot create the weights folder {directory}: {exc}. Set ADAIN_CUDA_HOME to a writable folder."
        ) from exc
    try:
        with atomic_path(dest) as tmp:
            _fetch(spec, tmp, progress, timeout, dest)
        _record_verified(dest, spec.sha256)
        return dest
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsError(
            f"could not download {spec.filename} from {spec.url} ({reason}). {_how_to_fix(spec, dest)}"
        ) from exc


def _fetch(spec: WeightFile, tmp: Path, progress: bool, timeout: float, dest: Path) -> None:
    """Streams ``spec`` into ``tmp``, checking its length and sha256 (WeightsError otherwise);
    the caller's atomic write removes ``tmp`` on any failure, Ctrl-C included."""
    digest, received, expected = hashlib.sha256(), 0, None
    with open(tmp, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else spec.size
        bar = _progress_bar(spec.filename, expected) if progress else None
        watchdog = _Stall(timeout)
        try:
            # read1 returns what one receive brings, so a server that trickles bytes is noticed
            while block := response.read1(_CHUNK):
                out.write(block)
                digest.update(block)
                received += len(block)
                watchdog.check(received, spec)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if expected is not None and received != expected:
        raise WeightsError(
            f"download of {spec.filename} from {spec.url} was cut short: got "
            f"{received} of {expected} bytes. Try again. {_how_to_fix(spec, dest)}"
        )
    if digest.hexdigest() != spec.sha256:
        raise WeightsError(
            f"{spec.filename} from {spec.url} failed verification: sha256 "
            f"{digest.hexdigest()}, expected {spec.sha256}. The file was discarded. "
            f"{_how_to_fix(spec, dest)}"
        )


class _Stall:
    """Fails a transfer that makes too little progress: less than 64 KiB in ``timeout`` seconds
    (the socket timeout alone lets a server that sends a byte now and then hold a download forever)."""

    def __init__(self, timeout: float) -> None:
        self.timeout, self.mark_time, self.mark_bytes = timeout, time.monotonic(), 0

    def check(self, received: int, spec: WeightFile) -> None:
        now = time.monotonic()
        if received - self.mark_bytes >= 1 << 16:
            self.mark_time, self.mark_bytes = now, received
        elif now - self.mark_time > self.timeout:
            raise TimeoutError(f"the transfer stalled: under 64 KiB in {self.timeout:g} s after {received} bytes")


def _stamp(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def _record_verified(path: Path, sha256: str) -> None:
    """Remembers that ``path`` (at this size and modification time) has this sha256."""
    st = path.stat()
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-check next time
        atomic_write(_stamp(path), lambda tmp: tmp.write_text(f"{st.st_size} {st.st_mtime_ns} {sha256}\n"))


def verified_sha256(path: Path) -> str:
    """The file's sha256, from the stamp written when it was last checked if the file is unchanged."""
    st = path.stat()
    try:
        size, mtime, digest = _stamp(path).read_text().split()
        if int(size) == st.st_size and int(mtime) == st.st_mtime_ns:
            return digest
    except (OSError, ValueError):
        pass
    digest = sha256_of(path)
    _record_verified(path, digest)
    return digest


def cached_state(spec: WeightFile) -> str:
    """'missing', 'verified' (the published file) or 'wrong' (another file under its name)."""
    path = cache_dir() / spec.filename
    if not path.is_file():
        return "missing"
    if spec.size is not None and path.stat().st_size != spec.size:
        return "wrong"
    return "verified" if verified_sha256(path) == spec.sha256 else "wrong"


def _progress_bar(name: str, total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {name}")


def resolve(
    key: str, explicit: str | Path | None = None, *, allow_download: bool = True, progress: bool = True
) -> Path:
    """The path of a weight file: ``explicit`` if given, else the cached copy, downloading it on
    first use. Raises WeightsError saying which file, where to put it and how to point at it."""
    spec = REGISTRY[key]
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"`{spec.parameter}` {path}: no such file")
        return path
    cached = cache_dir() / spec.filename
    state = cached_state(spec)
    if state == "verified":
        return cached
    offline = not allow_download or offline_mode()
    if state == "wrong" and offline:
        raise WeightsError(
            f"the cached {cached} is not the published {spec.filename} (its size or sha256 "
            f"differs from {spec.sha256}); delete it and run `adain-cuda weights download "
            f"{spec.key}`, or pass the path of a file of your own as `{spec.parameter}`"
        )
    if offline:
        raise WeightsError(
            f"{spec.filename} ({spec.description}) is not in the cache {cache_dir()} and "
            f"downloads are off. {_how_to_fix(spec, cached)}"
        )
    return download(spec, progress=progress)  # replaces a wrong file only once the new one is verified
