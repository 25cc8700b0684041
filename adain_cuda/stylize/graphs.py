"""CUDA graphs for repeated fixed-shape work (video frames, batches of one size).

A stylization launches a few hundred small kernels; at 512x512 their launch cost is a large part
of the frame. Replaying a captured CUDA graph launches them all at once. A shape is captured the
second time it is seen, so one-off images never pay for a capture (two warm-up runs and the
capture itself), and only the most recent ``capacity`` graphs (each with its own memory pool) are
kept.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["GraphCache"]

logger = logging.getLogger(__name__)


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: list[Tensor]
    output: Tensor


class GraphCache:
    """Runs ``fn(*tensors)`` eagerly the first time a (key, shapes) combination is seen and from
    the second time on replays a CUDA graph of it. ``fn`` must be a pure function of its tensor
    arguments and ``key`` (everything else it depends on goes into ``key``) and return one tensor."""

    def __init__(self, capacity: int = 2) -> None:
        self.capacity = capacity
        self._graphs: OrderedDict[Hashable, _Captured] = OrderedDict()
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self.enabled = True
        self.captures = 0  # for tests and curious users
        self.replays = 0

    def __call__(self, fn: Callable[..., Tensor], key: Hashable, *tensors: Tensor) -> Tensor:
        if not self.enabled:
            return fn(*tensors)
        full_key = (key, tuple((t.shape, t.stride(), t.dtype, t.device) for t in tensors))
        entry = self._graphs.get(full_key)
        if entry is None:
            if full_key not in self._seen:
                self._remember(full_key)
                return fn(*tensors)
            entry = self._capture(fn, tensors)
            if entry is None:
                return fn(*tensors)
            self._graphs[full_key] = entry
            while len(self._graphs) > self.capacity:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(full_key)
        for static, t in zip(entry.inputs, tensors):
            static.copy_(t)
        entry.graph.replay()
        self.replays += 1
        return entry.output.clone()  # the next replay overwrites the graph's output

    def clear(self) -> None:
        self._graphs.clear()
        self._seen.clear()

    def _remember(self, key: Hashable) -> None:
        self._seen[key] = None
        while len(self._seen) > 64:
            self._seen.popitem(last=False)

    def _capture(self, fn: Callable[..., Tensor], tensors: tuple[Tensor, ...]) -> _Captured | None:
        inputs = [t.clone() for t in tensors]
        side = torch.cuda.Stream(device=inputs[0].device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(2):
                fn(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: CUDA calls other threads make meanwhile (the video pipeline's readers
            # and writers) neither break the capture nor fail themselves
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                output = fn(*inputs)
        except RuntimeError as err:  # an op that cannot be captured: stay eager from now on
            logger.warning(f"CUDA graph capture failed ({err}); running eagerly")
            self.enabled = False
            return None
        self.captures += 1
        return _Captured(graph, inputs, output)
