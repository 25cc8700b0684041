"""The kernel library: AdaIN, channel statistics and the training losses as PyTorch operators.

The bottom layer of the package: it knows nothing of networks, images or files. Each function
runs the compiled ``torch.ops.adain_cuda`` kernels (which check their arguments and carry their
autograd formulas in C++), or the pure-PyTorch :mod:`~adain_cuda.ops.reference` where they cannot
run (warning once, naming the reason). :mod:`~adain_cuda.ops.kernel_paths` says which CUDA kernel
path a call takes and can force one. :mod:`~adain_cuda.ops.feature_maps` holds the pooling and
sub-pixel interleave kernels that the fast networks run between their convolutions.
"""

from . import feature_maps, kernel_paths, reference
from ._library import build_info
from .functional import adain, adain_from_stats, channel_stats
from .losses import ContentLoss, StyleLoss, content_loss, style_content_loss, style_loss
from .mixstyle import MixStyle
from .modules import AdaIN

__all__ = [
    "AdaIN",
    "ContentLoss",
    "MixStyle",
    "StyleLoss",
    "adain",
    "adain_from_stats",
    "build_info",
    "channel_stats",
    "content_loss",
    "feature_maps",
    "kernel_paths",
    "reference",
    "style_content_loss",
    "style_loss",
]
