"""``nn.Module`` wrappers of the fused ops, for use in place of hand-written AdaIN layers."""

from __future__ import annotations

from torch import Tensor, nn

from .functional import adain


class AdaIN(nn.Module):
    """Drop-in AdaIN layer: ``AdaIN()(content, style, alpha=1.0)``.

    Same defaults as the common PyTorch AdaIN code (unbiased variance, ``eps=1e-5`` inside the
    square root), so it gives the same numbers. Has no parameters.
    """

    def __init__(self, eps: float = 1e-5, unbiased: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.unbiased = unbiased

    def forward(self, content: Tensor, style: Tensor, alpha: float = 1.0) -> Tensor:
        return adain(content, style, alpha=alpha, eps=self.eps, unbiased=self.unbiased)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, unbiased={self.unbiased}"
