"""adain_cuda: fused AdaIN kernels for arbitrary style transfer (CPU and CUDA).

    import adain_cuda
    out = adain_cuda.adain(content_features, style_features, alpha=0.8)
    layer = adain_cuda.AdaIN()  # drop-in module
    loss = adain_cuda.style_loss(output_feats, style_feats)  # fused training loss

``adain_cuda.reference`` holds the pure-PyTorch formulation every kernel is tested against.
"""

from . import reference
from ._extension import build_info
from .losses import ContentLoss, StyleLoss, content_loss, style_content_loss, style_loss
from .modules import AdaIN
from .ops import adain, adain_from_stats, channel_stats

__version__ = "0.1.0"
__all__ = [
    "AdaIN", "ContentLoss", "StyleLoss", "adain", "adain_from_stats", "build_info", "channel_stats",
    "content_loss", "reference", "style_content_loss", "style_loss",
]
