"""The library's stylization API: a ``Stylizer`` holds the networks on a device and precision.

    stylizer = Stylizer.from_pretrained(device="cuda", precision="bf16")
    image = stylizer.stylize("content.jpg", "style.jpg", alpha=0.8)        # (3, H, W) tensor
    image = stylizer.stylize(c, ["a.jpg", "b.jpg"], weights=[0.7, 0.3])     # interpolation
    image = stylizer.stylize(c, "s.jpg", preserve_color=True)               # keep content colors
    image = stylizer.stylize(c, ["fg.jpg", "bg.jpg"], masks="mask.png")     # spatial control

Style statistics are computed once per style (and size/crop setting) and cached, so stylizing
many contents with one style encodes it once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from .._device import cpu_computes_bf16, parse_device
from ..images import imaging
from ..images.color import match_color
from ..images.imaging import ImageError, ImageSource
from ..models import Decoder, Encoder, FastDecoder, FastEncoder, FastOptions, weights
from ..ops import adain_from_stats, channel_stats
from .graphs import GraphCache
from .inputs import load_masks, normalise_weights
from .spatial import masked_adain, masks_to_features
from .style_bank import encoder_sha256
from .style_cache import StyleCache, style_key

__all__ = ["MIN_SIDE", "PRECISIONS", "ContentStatsHook", "Stylizer", "check_finite", "check_image_size"]

# Maps the (N, C) relu4_1 content mean and std of a batch to the statistics AdaIN should use.
logger = logging.getLogger(__name__)

ContentStatsHook = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

PRECISIONS = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def _available_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Stylizer:
    """Encoder and decoder on one device and precision, with a cache of style statistics.

    ``fast`` runs the exact rewrites of :mod:`adain_cuda.models.fast` (folded input convolution, no
    padded copies, sub-pixel upsampling convolutions, ReLU in the convolution's epilogue on CUDA)
    instead of the plain layer stacks; ``channels_last`` runs the networks in that memory format;
    ``cuda_graphs`` replays a CUDA graph of the whole pipeline for a content shape seen before.
    With None, ``fast`` and ``channels_last`` are on for both devices (on the CPU the fast path's
    3x3 layers run as Winograd convolutions in float32), ``cuda_graphs`` on for CUDA; False
    selects the plain path.
    ``fast_options`` switches single rewrites off (for comparisons; the results are the same)."""

    def __init__(
        self,
        encoder: Encoder,
        decoder: Decoder,
        *,
        device: str | torch.device | None = "auto",
        precision: str = "fp32",
        channels_last: bool | None = None,
        fast: bool | None = None,
        cuda_graphs: bool | None = None,
        fast_options: FastOptions | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown `precision` {precision!r}: use one of fp32, bf16, fp16")
        self.device = parse_device(device)
        self.dtype = PRECISIONS[precision]
        on_cuda = self.device.type == "cuda"
        if not on_cuda and self.dtype == torch.bfloat16 and not cpu_computes_bf16():
            # Emulated bfloat16 convolutions run many times slower than float32 on such a CPU;
            # float32 is faster there and at least as exact.
            logger.info("`precision` bf16 on a CPU without native bfloat16: computing in float32 (faster here)")
            self.dtype = torch.float32
        if self.dtype == torch.float16 and not on_cuda:
            raise ValueError("`precision` fp16 needs a CUDA device; use fp32 or bf16 on the CPU")
        if cuda_graphs and not on_cuda:
            raise ValueError(f"cuda_graphs=True needs a CUDA device, not {self.device}")
        self.fast = True if fast is None else bool(fast)
        # channels_last by default everywhere: cuDNN's and oneDNN's convolutions read it natively
        # (on a 2-core AVX2 CPU the whole 256x256 stylization ran 17% faster than in NCHW).
        self.channels_last = True if channels_last is None else bool(channels_last)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        # Which encoder weights made a statistic (style banks refuse statistics of other weights).
        self.encoder_sha256 = encoder_sha256(encoder.state_dict())
        # Where the networks that run are rewritten or cast (sharing the loaded modules'
        # parameters), float32 CPU copies of the loaded weights rebuild the plain ones for export.
        self._plain_weights: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None
        if self.fast or self.dtype != torch.float32:
            self._plain_weights = (_float32_copy(encoder), _float32_copy(decoder))
        nets: tuple[nn.Module, nn.Module] = (encoder.eval(), decoder.eval())
        if self.fast:  # rewritten from the weights as loaded (in float64), before any cast to bf16
            options = fast_options or FastOptions()
            if on_cuda:  # cuDNN picks its own algorithms: no transformed weights on the GPU
                options = dataclasses.replace(options, winograd=False)
            nets = (FastEncoder(encoder, options), FastDecoder(decoder, options))
        self.encoder, self.decoder = (
            _placed(net.requires_grad_(False), self.device, self.dtype, self.memory_format) for net in nets
        )
        self.graphs = GraphCache() if (on_cuda if cuda_graphs is None else cuda_graphs) else None
        self.style_cache = StyleCache()
        self.style_encodes = 0  # how many times a style image went through the encoder

    @classmethod
    def from_pretrained(
        cls,
        vgg: str | Path | None = None,
        decoder: str | Path | None = None,
        *,
        allow_download: bool = True,
        progress: bool = True,
        **kwargs,
    ) -> Stylizer:
        """Loads the community weights (or the given files; a decoder the trainer saved loads
        the same way), downloading missing ones into the cache on first use."""
        enc = Encoder().load_weights(weights.resolve("vgg", vgg, allow_download=allow_download, progress=progress))
        dec = Decoder().load_weights(
            weights.resolve("decoder", decoder, allow_download=allow_download, progress=progress)
        )
        return cls(enc, dec, **kwargs)

    def plain_networks(self) -> tuple[Encoder, Decoder]:
        """The plain float32 networks on this Stylizer's device, in eval mode: the ones it runs when
        they are those, else rebuilt from the loaded weights (export traces these)."""
        if self._plain_weights is None:
            assert isinstance(self.encoder, Encoder) and isinstance(self.decoder, Decoder)
            return self.encoder, self.decoder
        encoder, decoder = Encoder(), Decoder()
        encoder.load_state_dict(self._plain_weights[0])
        decoder.load_state_dict(self._plain_weights[1])
        return tuple(net.requires_grad_(False).eval().to(self.device) for net in (encoder, decoder))  # type: ignore[return-value]

    # ------------------------------------------------------------------ helpers ----
    def prepare_image(self, source: ImageSource, size: int, crop: bool) -> Tensor:
        """An image loaded, resized (shorter side ``size``, 0 keeps it) and, with ``crop``,
        center-cropped, as (3, H, W) float32; sizes the device cannot hold are refused first."""
        img = imaging.load_image(source)
        self.check_memory(*imaging.prepared_size(img.shape[-2], img.shape[-1], size, crop))
        return imaging.prepare(img, size, crop)

    def check_memory(self, height: int, width: int, batch: int = 1) -> None:
        """Refuses ``batch`` images of this size whose activations cannot fit on the device,
        before anything runs (or runs out of memory)."""
        elem = torch.finfo(self.dtype).bits // 8
        # The largest activations are the 64-channel full-resolution maps of the decoder's last
        # layers: a padded input, the convolution output and the upsampled map alive together.
        needed = batch * 4 * 64 * (height + 2) * (width + 2) * elem
        available = _available_memory(self.device)
        if available is not None and needed > 0.9 * available:
            what = f"{batch} images of {width}x{height} need" if batch > 1 else f"a {width}x{height} image needs"
            raise ImageError(
                f"{what} about {needed / 2**30:.1f} GiB on {self.device} in {self.dtype}, but only "
                f"{available / 2**30:.1f} GiB is free; lower `content_size` (e.g. 1024)"
                f"{', `batch_size`' if batch > 1 else ''} or use `precision` bf16"
            )

    @torch.no_grad()
    def style_stats(
        self, style: ImageSource, *, size: int = 512, crop: bool = False, recolor_to: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """relu4_1 mean and std of a style image, (1, C) float32, cached per image and setting
        (not when the style is recolored to a content's colors, which depends on the content)."""

        def compute() -> tuple[Tensor, Tensor]:
            img = self.prepare_image(style, size, crop)
            if recolor_to is not None:
                img = match_color(img, recolor_to)
            return self.encode_style(img.unsqueeze(0))

        return self.style_cache.get(None if recolor_to is not None else style_key(style, size, crop), compute)

    # ------------------------------------------------------------------- stylize ----
    @torch.no_grad()
    def stylize(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        *,
        alpha: float = 1.0,
        weights: Sequence[float] | None = None,
        preserve_color: bool = False,
        masks: ImageSource | Sequence[ImageSource] | Tensor | None = None,
        content_size: int = 512,
        style_size: int = 512,
        crop: bool = False,
        clamp: bool = False,
    ) -> Tensor:
        """Stylizes one content image; returns a (3, H, W) float32 CPU tensor.

        The decoder's output is not bounded (values slightly outside [0, 1], e.g. -0.2..1.2, are
        usual): by default it is returned as is, for further processing; ``clamp=True`` clamps it
        to [0, 1]. :func:`adain_cuda.stylize.save_image` clamps when writing either way.

        ``style``: one image, or several to interpolate with ``weights`` (normalised to sum 1), or
        to place with ``masks``: one mask for two styles (foreground, background) or one per style.
        ``content_size`` / ``style_size`` resize the shorter side (0 keeps the size), ``crop`` takes
        the central square. H x W is the content's size after that resize.
        """
        styles = as_list(style)
        if not styles:
            raise ValueError("no style given")
        _check_alpha(alpha)
        if masks is not None and weights is not None:
            raise ValueError("`weights` and `masks` cannot be combined: masks place each style, weights blend them")
        mixing = normalise_weights(weights, len(styles)) if masks is None else None
        content_img = self.prepare_image(content, content_size, crop)
        height, width = content_img.shape[-2:]
        recolor = content_img if preserve_color else None
        stats = [self.style_stats(s, size=style_size, crop=crop, recolor_to=recolor) for s in styles]
        region = None
        if masks is not None:
            region = load_masks(masks, len(styles), (height, width))
        out = self.transfer(content_img.unsqueeze(0), stats, alpha=alpha, weights=mixing, masks=region)[0].cpu()
        check_finite(out, "the stylized image")
        return out.clamp(0.0, 1.0) if clamp else out

    @torch.no_grad()
    def transfer(
        self,
        content: Tensor,
        stats: Sequence[tuple[Tensor, Tensor]],
        *,
        alpha: float = 1.0,
        weights: Sequence[float] | None = None,
        masks: Tensor | None = None,
        content_stats: ContentStatsHook | None = None,
    ) -> Tensor:
        """The tensor-level pipeline: ``content`` (N, 3, H, W) images (float in [0, 1] or uint8,
        any device; checked as :func:`~adain_cuda.images.imaging.image_tensor` checks every image),
        ``stats`` from :meth:`style_stats` or :meth:`encode_style`; returns (N, 3, H, W) float32 on
        the stylizer's device. ``weights`` (one per style, normalised here as in :meth:`stylize`)
        mix several styles; ``masks`` ((K, H, W) tensors, or anything :meth:`stylize` takes) place
        them. ``content_stats`` replaces the content's relu4_1 statistics before AdaIN (e.g. a
        moving average over video frames); AdaIN still runs in the fused kernel. No resizing and
        no caching: the building block for batches and video."""
        x = self._network_input(content)
        _check_alpha(alpha)
        stats = _checked_stats(stats)
        if masks is not None:
            if content_stats is not None:
                raise ValueError(
                    "`content_stats` and `masks` cannot be combined: masked AdaIN takes each region's own statistics"
                )
            if weights is not None:
                raise ValueError("`weights` and `masks` cannot be combined: masks place each style, weights blend them")
            region = load_masks(masks, len(stats), (x.shape[-2], x.shape[-1]))
            feat = self.encoder(x)
            region = masks_to_features(region.to(self.device), feat.shape[-2:])
            return self._decode(
                x.shape[-2:], torch.cat([masked_adain(f[None], stats, region, alpha=alpha) for f in feat])
            )
        mixing = tuple(normalise_weights(weights, len(stats)))
        flat = [t for pair in stats for t in pair]
        if content_stats is not None:  # a stateful hook cannot be replayed from a graph
            return self._pipeline(x, *flat, alpha=alpha, mixing=mixing, content_stats=content_stats)
        if self.graphs is not None:
            return self.graphs(partial(self._pipeline, alpha=alpha, mixing=mixing), (alpha, mixing), x, *flat)
        return self._pipeline(x, *flat, alpha=alpha, mixing=mixing)

    @torch.no_grad()
    def transfer_each(
        self,
        content: Tensor,
        mean: Tensor,
        std: Tensor,
        alpha: Tensor | float = 1.0,
        *,
        content_index: Tensor | None = None,
    ) -> Tensor:
        """Each output its own style and alpha, in one pass: ``content`` (U, 3, H, W) images (as
        :meth:`transfer` takes them), ``mean`` and ``std`` (N, C) style statistics (a
        :class:`~adain_cuda.stylize.style_bank.StyleBank`'s rows), ``alpha`` one per output (N,)
        or one for all, ``content_index`` (N,) the content image of each output (default: output
        i stylizes content i; each content is encoded once however many outputs it has). Returns
        (N, 3, H, W) float32 on the stylizer's device. The batch building block of dataset
        stylization and style augmentation."""
        x = self._network_input(content)
        feat = self.encoder(x)
        if content_index is not None:
            feat = feat.index_select(0, content_index.to(self.device))
        n = feat.shape[0]
        if mean.shape != (n, feat.shape[1]) or std.shape != mean.shape:
            raise ValueError(
                f"`mean` and `std` must be ({n}, {feat.shape[1]}): one row of statistics per output, "
                f"got {tuple(mean.shape)} and {tuple(std.shape)}"
            )
        mean, std = (t.to(self.device, torch.float32) for t in (mean, std))
        a = torch.as_tensor(alpha, dtype=torch.float32, device=self.device).reshape(-1, 1).expand(n, 1)
        if not bool(((a >= 0) & (a <= 1)).all()):
            raise ValueError("`alpha` must be in [0, 1]")
        if not bool((a == 1).all()):
            # alpha * AdaIN(f) + (1 - alpha) * f is AdaIN(f) towards the statistics blended the same way
            content_mean, content_std = channel_stats(feat)
            mean = a * mean + (1 - a) * content_mean.float()
            std = a * std + (1 - a) * content_std.float()
        return self._decode(x.shape[-2:], adain_from_stats(feat, mean, std))

    def _network_input(self, content: Tensor) -> Tensor:
        """(N, 3, H, W) content images checked as every image is (:func:`imaging.image_tensor`,
        the networks' smallest size), on the networks' device, dtype and memory format."""
        content = imaging.image_tensor(content, "content", batch=True)
        check_image_size(content, "content")
        return content.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)

    def _pipeline(
        self,
        x: Tensor,
        *flat_stats: Tensor,
        alpha: float,
        mixing: tuple[float, ...],
        content_stats: ContentStatsHook | None = None,
    ) -> Tensor:
        """encode -> AdaIN (mixed over the styles) -> decode, all on the device: what a CUDA graph captures."""
        feat = self.encoder(x)
        pairs = list(zip(flat_stats[::2], flat_stats[1::2]))
        if content_stats is not None:
            mean, std = channel_stats(feat)
            pairs = [_retarget(mean, std, *content_stats(mean, std), m, s) for m, s in pairs]
        if mixing == (1.0,):
            target = adain_from_stats(feat, *pairs[0], alpha=alpha)
        else:
            target = torch.stack(
                [w * adain_from_stats(feat, m, s, alpha=alpha) for w, (m, s) in zip(mixing, pairs)]
            ).sum(0)
        return self._decode(x.shape[-2:], target)

    def _decode(self, size: torch.Size, target: Tensor) -> Tensor:
        out = self.decoder(target.to(self.dtype))
        return out[:, :, : size[0], : size[1]].float()

    @torch.no_grad()
    def encode_style(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """relu4_1 statistics of a (1, 3, H, W) style image in [0, 1], uncached."""
        check_image_size(style, "style")
        self.style_encodes += 1
        return channel_stats(
            self.encoder(style.to(self.device, self.dtype).contiguous(memory_format=self.memory_format))
        )


# The encoder halves an image three times and pads every convolution by reflection, which needs
# two pixels: relu4_1 of an image under 9 pixels on a side would have a side of 1.
MIN_SIDE = 9


def check_image_size(images: Tensor, what: str) -> None:
    """Refuses (N, 3, H, W) images the networks cannot take, with the smallest size they can."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ImageError(f"{what} images must be (N, 3, H, W) tensors, got {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise ImageError(
            f"the {what} image is {w}x{h} pixels; the networks need at least {MIN_SIDE} on each "
            f"side (the encoder downsamples 8x): use a larger image or a larger size setting"
        )


def as_list(sources: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    """One image source or a list or tuple of them, as a list."""
    if isinstance(sources, (list, tuple)):
        return list(sources)
    return [sources]  # type: ignore[list-item]  # a str is a Sequence, but one path here


def _float32_copy(net: nn.Module) -> dict[str, Tensor]:
    return {name: t.detach().to("cpu", torch.float32, copy=True) for name, t in net.state_dict().items()}


def _placed(net: nn.Module, device: torch.device, dtype: torch.dtype, memory_format: torch.memory_format) -> nn.Module:
    # Module.to takes memory_format at run time; its type stubs do not list it.
    return net.to(device, dtype, memory_format=memory_format)  # type: ignore[call-overload]


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= float(alpha) <= 1.0:  # NaN fails too
        raise ValueError(f"`alpha` must be in [0, 1], got {alpha}")


def _checked_stats(stats: Sequence[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """Style statistics as :meth:`Stylizer.style_stats` gives them: at least one (mean, std)
    pair of equal-shaped finite float tensors with the same number of channels."""
    pairs = list(stats)
    if not pairs:
        raise ValueError("no style statistics given")
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, Tensor) for t in pair)):
            raise ValueError(f"style statistics {index} must be a (mean, std) pair of tensors")
        mean, std = pair
        if mean.shape != std.shape or mean.shape[-1] != pairs[0][0].shape[-1] or not mean.is_floating_point():
            raise ValueError(
                f"style statistics {index}: mean {tuple(mean.shape)} and std {tuple(std.shape)} must "
                "be float tensors of one shape, (1, C), like the other styles'"
            )
    # One device sync for every pair (transfer runs per video batch): which pairs are finite.
    device = pairs[0][0].device
    finite = torch.stack([(torch.isfinite(m).all() & torch.isfinite(s).all()).to(device) for m, s in pairs])
    for index, ok in enumerate(finite.tolist()):
        if not ok:
            raise ValueError(f"style statistics {index} have NaN or infinite values")
    return [(m, s) for m, s in pairs]


def check_finite(result: Tensor, what: str) -> None:
    """Refuses results with NaN or infinite values, naming the likely causes."""
    if not torch.isfinite(result).all():
        raise ValueError(
            f"{what} has NaN or infinite values: the decoder weights or the inputs (style "
            "weights, masks, images) are not finite"
        )


def _retarget(
    mean: Tensor, std: Tensor, used_mean: Tensor, used_std: Tensor, style_mean: Tensor, style_std: Tensor
) -> tuple[Tensor, Tensor]:
    """Style statistics that make AdaIN with the content's own statistics ``(mean, std)`` give
    AdaIN with ``(used_mean, used_std)`` instead:
    ``s_std * (x - used_mean) / used_std + s_mean == t_std * (x - mean) / std + t_mean`` with
    ``t_std = s_std * std / used_std`` and ``t_mean = s_mean + s_std * (mean - used_mean) / used_std``."""
    scale = style_std / used_std
    return style_mean + scale * (mean - used_mean), scale * std
