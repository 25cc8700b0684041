"""MixStyle (Zhou et al., "Domain Generalization with MixStyle", ICLR 2021): a training-time layer
that mixes the instance statistics (per-channel mean and std) of the samples of a batch, so a
network sees styles between those of its training domains.

    layer = adain_cuda.MixStyle(p=0.5, alpha=0.1)    # between two blocks of a CNN
    features = layer(features)                        # identity in eval mode

With probability ``p`` per batch, each sample's statistics become ``lam * own + (1 - lam) *
partner's``, ``lam ~ Beta(alpha, alpha)`` per sample; partners are a random permutation of the
batch (``mix="random"``) or, for a batch whose two halves come from two domains, a shuffled
sample of the other half (``mix="crossdomain"``). The statistics come from the fused
:func:`~adain_cuda.channel_stats` kernel. ``detach=True`` (the released code's choice) treats them
as constants, so the layer is a per-channel affine map whose gradient is its scale; with
``detach=False`` gradients flow through them, and the output runs through the fused
:func:`~adain_cuda.adain_from_stats` op. Random numbers come from torch's global generator
(``torch.manual_seed`` makes a run reproducible).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .functional import adain_from_stats, channel_stats

__all__ = ["MixStyle"]

MIX_MODES = ("random", "crossdomain")


class MixStyle(nn.Module):
    def __init__(
        self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6, mix: str = "random", detach: bool = True
    ) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        if not float(alpha) > 0.0:
            raise ValueError(f"alpha (the Beta distribution's parameter) must be positive, got {alpha}")
        if mix not in MIX_MODES:
            raise ValueError(f"mix must be one of {', '.join(MIX_MODES)}, got {mix!r}")
        self.p, self.alpha, self.eps, self.mix_mode, self.detach = float(p), float(alpha), float(eps), mix, detach

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}, eps={self.eps}, mix={self.mix_mode!r}, detach={self.detach}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()).item() >= self.p:
            return x
        batch = x.shape[0]
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((batch, 1)).to(x.device)
        return self.mix(x, lam, self.partners(batch).to(x.device))

    def partners(self, batch: int) -> Tensor:
        """Each sample's partner: a random permutation, or (crossdomain) a shuffled sample of the
        other half of the batch."""
        if self.mix_mode == "random":
            return torch.randperm(batch)
        if batch % 2:
            raise ValueError(f"mix='crossdomain' needs a batch of two equal halves, got {batch} samples")
        reverse = torch.arange(batch - 1, -1, -1)
        second, first = reverse.chunk(2)  # the second half's indices partner the first half's samples
        return torch.cat([second[torch.randperm(batch // 2)], first[torch.randperm(batch // 2)]])

    def mix(self, x: Tensor, lam: Tensor, partners: Tensor) -> Tensor:
        """The layer's output for given mixing weights ``lam`` (N, 1) and ``partners`` (N,)."""
        mean, std = channel_stats(x, eps=self.eps)
        if self.detach:
            mean, std = mean.detach(), std.detach()
        lam = lam.to(mean.dtype)
        mixed_mean = lam * mean + (1 - lam) * mean[partners]
        mixed_std = lam * std + (1 - lam) * std[partners]
        if not self.detach:
            return adain_from_stats(x, mixed_mean, mixed_std, eps=self.eps)
        scale = mixed_std / std  # constants: the normalised features rescaled, as one affine map
        shift = mixed_mean - mean * scale
        return (x * scale[..., None, None].to(x.dtype) + shift[..., None, None].to(x.dtype)).contiguous(
            memory_format=torch.channels_last if _channels_last(x) else torch.contiguous_format
        )


def _channels_last(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
