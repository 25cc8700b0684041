"""Deployment: a Stylizer as a self-contained module, exported to ONNX or as a ``torch.export``
program.

    from adain_cuda.export import export_onnx, export_program
    export_onnx(stylizer, "la_muse.onnx", style="la_muse.jpg")   # content in, stylized image out
    export_onnx(stylizer, "any_style.onnx")                       # content and style in

The ONNX graph uses standard operators only: the fused AdaIN op is lowered to its pure-PyTorch
formulation (:mod:`adain_cuda.reference`) for the export, so onnxruntime and other runtimes run
it. A ``torch.export`` program keeps the fused op (load it with ``torch.export.load`` after
``import adain_cuda``). Both take and return (N, 3, H, W) float32 images in [0, 1]; the output
is clamped to [0, 1] and cropped to the input's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ._files import atomic_write, check_writable_folder, refuse_existing
from .images.imaging import ImageSource
from .ops import adain_from_stats, channel_stats, reference
from .stylize import Stylizer

__all__ = ["StylizerModule", "check_destination", "export_onnx", "export_program", "stylizer_module"]


class StylizerModule(nn.Module):
    """encode -> AdaIN -> decode as one module. With ``style_mean``/``style_std`` (1, C) baked in
    it takes the content alone; without them it takes ``(content, style)``. ``fused=False`` runs
    the pure-PyTorch AdaIN (standard ONNX operators)."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        style_mean: Tensor | None = None,
        style_std: Tensor | None = None,
        alpha: float = 1.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.alpha, self.fused = encoder, decoder, float(alpha), fused
        if (style_mean is None) != (style_std is None):
            raise ValueError("give both style_mean and style_std, or neither")
        self.has_style = style_mean is not None and style_std is not None
        if style_mean is not None and style_std is not None:
            self.register_buffer("style_mean", style_mean.detach().float().clone())
            self.register_buffer("style_std", style_std.detach().float().clone())

    def _stats(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        return channel_stats(feat) if self.fused else reference.channel_stats(feat)

    def forward(self, content: Tensor, style: Tensor | None = None) -> Tensor:
        feat = self.encoder(content)
        if self.has_style:
            mean, std = self.get_buffer("style_mean"), self.get_buffer("style_std")
        else:
            if style is None:
                raise ValueError("this module has no style baked in: call it with (content, style)")
            mean, std = self._stats(self.encoder(style))
        adain = adain_from_stats if self.fused else reference.adain_from_stats
        out = self.decoder(adain(feat, mean, std, alpha=self.alpha))
        return out[:, :, : content.shape[2], : content.shape[3]].clamp(0.0, 1.0)


def stylizer_module(
    stylizer: Stylizer,
    style: ImageSource | None = None,
    *,
    alpha: float = 1.0,
    style_size: int = 512,
    fused: bool = True,
) -> StylizerModule:
    """The Stylizer's plain float32 networks as a :class:`StylizerModule` (eval mode), with the
    style's statistics baked in when ``style`` is given (computed by the Stylizer itself, so it
    must run in float32: a bf16 Stylizer's statistics carry bf16's rounding)."""
    if stylizer.dtype != torch.float32:
        raise ValueError("export needs a float32 Stylizer: build it with precision='fp32'")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mean = std = None
    if style is not None:
        mean, std = stylizer.style_stats(style, size=style_size)
    encoder, decoder = stylizer.plain_networks()
    return StylizerModule(encoder, decoder, style_mean=mean, style_std=std, alpha=alpha, fused=fused).eval()


def _examples(module: StylizerModule, size: Sequence[int], device) -> tuple[Tensor, ...]:
    if any(s % 8 or s < 16 for s in size):
        raise ValueError(f"example_size must be multiples of 8 of at least 16, got {tuple(size)}")
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, *size, generator=g).to(device)
    return (content,) if module.has_style else (content, torch.rand(1, 3, *size, generator=g).to(device))


def _dynamic_shapes(module: StylizerModule):
    """Any height and width that are multiples of 8 (ceil-mode pooling would otherwise make the
    graph depend on each size's remainder); the batch size as exported."""

    def side(name: str):
        return 8 * torch.export.Dim(name, min=2, max=1024)

    shapes = {"content": {2: side("height8"), 3: side("width8")}}
    if not module.has_style:
        shapes["style"] = {2: side("style_height8"), 3: side("style_width8")}
    return shapes


def export_onnx(
    stylizer: Stylizer,
    path: str | Path,
    *,
    style: ImageSource | None = None,
    alpha: float = 1.0,
    style_size: int = 512,
    example_size: Sequence[int] = (256, 256),
    dynamic: bool = True,
    overwrite: bool = True,
) -> Path:
    """Writes an ONNX model of the stylizer (standard operators only; see the module docs).
    ``dynamic``: any height and width that are multiples of 8 (else fixed at ``example_size``, which
    must then be the size the model is run at); the batch size is that of the example (1).
    ``overwrite=False`` never replaces an existing file. The destination is checked before the
    export runs; a failed write is one OSError naming the file."""
    path = check_destination(path, overwrite)
    module = stylizer_module(stylizer, style, alpha=alpha, style_size=style_size, fused=False)
    args = _examples(module, example_size, stylizer.device)
    names = ["content"] if module.has_style else ["content", "style"]
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=names,
            output_names=["stylized"],
            dynamic_shapes=_dynamic_shapes(module) if dynamic else None,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    return atomic_write(path, lambda tmp: program.save(str(tmp), external_data=False), overwrite=overwrite)


def export_program(
    stylizer: Stylizer,
    path: str | Path,
    *,
    style: ImageSource | None = None,
    alpha: float = 1.0,
    style_size: int = 512,
    example_size: Sequence[int] = (256, 256),
    dynamic: bool = True,
    overwrite: bool = True,
) -> Path:
    """Writes a ``torch.export`` program (``.pt2``) of the stylizer with the fused op; the
    destination and failures as for :func:`export_onnx`."""
    path = check_destination(path, overwrite)
    module = stylizer_module(stylizer, style, alpha=alpha, style_size=style_size, fused=True)
    args = _examples(module, example_size, stylizer.device)
    with torch.no_grad():
        program = torch.export.export(module, args, dynamic_shapes=_dynamic_shapes(module) if dynamic else None)
    return atomic_write(path, lambda tmp: torch.export.save(program, tmp), overwrite=overwrite)


def check_destination(path: str | Path, overwrite: bool) -> Path:
    """``path``, once its folder is known to be writable and, unless ``overwrite``, the name free."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"the export destination {path} is a folder; give a file name")
    refuse_existing(path, overwrite)
    check_writable_folder(path.parent if str(path.parent) else ".", "the export destination's folder")
    return path
