"""Video stylization: a :class:`~adain_cuda.stylize.Stylizer` applied to every frame.

    from adain_cuda.video import stylize_video
    report = stylize_video(stylizer, "in.mp4", "out.mp4", ["style.jpg"], temporal_smoothing=0.9)

The style is encoded once; frames go through :func:`~adain_cuda.video.container.process_video`
in batches. Temporal smoothing: per-frame AdaIN flickers because each frame's content statistics
move when something moves in the frame. With ``temporal_smoothing = s`` in [0, 1) the relu4_1
content mean and std are an exponential moving average,
``stat_t = s * stat_(t-1) + (1 - s) * frame_stat_t`` (0: off, 0.9: about a ten-frame memory),
handed to the Stylizer's content-statistics hook, so AdaIN still runs in the fused kernel. The
report gives the flicker measure: the mean absolute difference between consecutive output frames
over that of the input frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..images import imaging
from ..images.imaging import ImageSource
from ..stylize import normalise_weights
from ..stylize.stylizer import MIN_SIDE, as_list, check_finite
from .container import VideoError, VideoReport, probe, process_video

__all__ = ["stylize_video"]


def stylize_video(
    stylizer,
    src: str | Path,
    dst: str | Path,
    styles: ImageSource | Sequence[ImageSource],
    *,
    weights: Sequence[float] | None = None,
    alpha: float = 1.0,
    preserve_color: bool = False,
    content_size: int = 0,
    style_size: int = 512,
    resize_back: bool = True,
    temporal_smoothing: float = 0.0,
    **options,
) -> VideoReport:
    """Stylizes a video with a :class:`~adain_cuda.stylize.Stylizer`. ``content_size`` (shorter
    side, 0 keeps the size) sets the resolution the networks see; the result is resized back to
    the source size unless ``resize_back`` is False (then the output has the processed size).
    ``options`` go to :func:`process_video` (batch_size, codec, crf, preset, skip_bad_frames, progress,
    overwrite). The memory the batches need is checked before the first frame is decoded."""
    styles = as_list(styles)
    if not 0.0 <= temporal_smoothing < 1.0:
        raise VideoError(f"`temporal_smoothing` must be in [0, 1), got {temporal_smoothing}")
    if not 0.0 <= alpha <= 1.0:
        raise VideoError(f"`alpha` must be in [0, 1], got {alpha}")
    if 0 < content_size < MIN_SIDE:
        raise VideoError(
            f"`content_size` {content_size} is too small: the networks need at least {MIN_SIDE} pixels on each side"
        )
    mixing = normalise_weights(weights, len(styles))
    # The whole clip's cost is known before the first frame: refuse what cannot fit now.
    shown_w, shown_h, _ = probe(src)
    work_h, work_w = imaging.resized_size(shown_h, shown_w, content_size)
    stylizer.check_memory(work_h, work_w, batch=1 if preserve_color else options.get("batch_size", 8))
    fixed = None if preserve_color else [stylizer.style_stats(s, size=style_size) for s in styles]
    smoother = _StatSmoother(temporal_smoothing)

    def transform(frames: Tensor) -> Tensor:
        h, w = frames.shape[-2:]
        work = imaging.resize_shorter(frames, content_size)
        outs = []
        # Colors are preserved per frame: the style is recolored to each frame (and re-encoded).
        groups = [work] if fixed is not None else [f[None] for f in work]
        for group in groups:
            stats = fixed or [stylizer.style_stats(s, size=style_size, recolor_to=group[0].cpu()) for s in styles]
            hook = smoother if smoother.strength > 0.0 else None
            outs.append(stylizer.transfer(group, stats, alpha=alpha, weights=mixing, content_stats=hook))
        out = torch.cat(outs)
        check_finite(out, "the stylized video frames")
        if resize_back and out.shape[-2:] != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return out

    if not resize_back and content_size > 0:  # the encoder is told the size the frames are resized to
        return process_video(src, dst, transform, output_size=(work_w, work_h), **options)
    return process_video(src, dst, transform, **options)


class _StatSmoother:
    """Exponential moving average of per-frame relu4_1 content statistics (strength s)."""

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def __call__(self, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
        if self.strength == 0.0:
            return mean, std
        means: list[Tensor] = []
        stds: list[Tensor] = []
        for m, s in zip(mean, std):  # frames in order
            if self.mean is None or self.std is None:
                new_mean, new_std = m, s
            else:
                new_mean = self.strength * self.mean + (1 - self.strength) * m
                new_std = self.strength * self.std + (1 - self.strength) * s
            self.mean, self.std = new_mean, new_std
            means.append(new_mean)
            stds.append(new_std)
        return torch.stack(means), torch.stack(stds)
