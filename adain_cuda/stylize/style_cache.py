"""The Stylizer's memory of style statistics: a style image is encoded once per setting (size,
crop) and its relu4_1 statistics are reused while the image is unchanged, so stylizing many
contents with one style, or moving an alpha slider, does not run the encoder again."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from torch import Tensor

__all__ = ["StyleCache"]

Stats = tuple[Tensor, Tensor]


def style_key(source: object, size: int, crop: bool) -> tuple | None:
    """What identifies a style's statistics: a file by its resolved path, modification time and
    size, a PIL image or a tensor by a hash of its pixels; None for what cannot be keyed."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            st = path.stat()
        except OSError:
            return None  # loading will report it
        return ("path", str(path.resolve()), st.st_mtime_ns, st.st_size, size, crop)
    if isinstance(source, Image.Image):
        return ("pil", hashlib.sha1(source.tobytes()).hexdigest(), source.size, source.mode, size, crop)
    if isinstance(source, Tensor):
        data = source.detach().cpu().contiguous().numpy().tobytes()
        return ("tensor", hashlib.sha1(data).hexdigest(), tuple(source.shape), str(source.dtype), size, crop)
    return None


class StyleCache:
    """Least-recently-used statistics, at most ``capacity`` settings of styles."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple, Stats] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple | None, compute: Callable[[], Stats]) -> Stats:
        """The cached statistics for ``key``, else ``compute()`` (remembered unless key is None)."""
        if key is not None and key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        stats = compute()
        if key is not None:
            self._entries[key] = stats
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return stats

    def clear(self) -> None:
        self._entries.clear()
