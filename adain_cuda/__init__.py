"""adain_cuda: fused AdaIN kernels for arbitrary style transfer (CPU and CUDA).

    import adain_cuda
    out = adain_cuda.adain(content_features, style_features, alpha=0.8)
    layer = adain_cuda.AdaIN()  # drop-in module
    loss = adain_cuda.style_loss(output_feats, style_feats)  # fused training loss
    stylizer = adain_cuda.Stylizer.from_pretrained()  # images in, stylized images out

The package is layered, each layer importing only those below it:
``ops`` (the kernels) <- ``models`` (networks, weights) <- ``stylize`` (images) <- ``video`` and
``training`` <- ``cli``. ``adain_cuda.reference`` is the pure-PyTorch formulation every kernel is
tested against.
"""

from ._version import __version__
from .ops import (
    AdaIN,
    ContentLoss,
    MixStyle,
    StyleLoss,
    adain,
    adain_from_stats,
    build_info,
    channel_stats,
    content_loss,
    reference,
    style_content_loss,
    style_loss,
)

__all__ = [
    "AdaIN",
    "ContentLoss",
    "MixStyle",
    "StyleLoss",
    "Stylizer",
    "__version__",
    "adain",
    "adain_from_stats",
    "build_info",
    "channel_stats",
    "content_loss",
    "reference",
    "style_content_loss",
    "style_loss",
]


def __getattr__(name: str):
    # The Stylizer lives two layers up (networks, images); importing it lazily keeps
    # `import adain_cuda` as light as the op layer.
    if name == "Stylizer":
        from .stylize import Stylizer

        return Stylizer
    raise AttributeError(f"module 'adain_cuda' has no attribute {name!r}")
