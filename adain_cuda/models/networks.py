"""The style-transfer networks: the VGG-19 encoder to relu4_1 and the AdaIN decoder.

Both are plain ``nn.Sequential`` stacks laid out module for module like the community weight files
(``vgg_normalised.pth``: 53 modules, of which the encoder uses the first 31; ``decoder.pth``: 29
modules), so those state dicts load directly (docs/weights.md). Loading checks every
key and shape and says exactly what does not match.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["Decoder", "Encoder", "WeightsError", "build_decoder_layers", "build_vgg_layers", "load_state_dict_file"]

# (in, out) channels of each 3x3 convolution; "M" a 2x2 max pool (ceil mode). The full
# vgg_normalised file continues to relu5_4; the encoder stops after relu4_1 (module 30).
_VGG_PLAN: list[tuple[int, int] | str] = [
    (3, 64),
    (64, 64),
    "M",
    (64, 128),
    (128, 128),
    "M",
    (128, 256),
    (256, 256),
    (256, 256),
    (256, 256),
    "M",
    (256, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    "M",
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
]
# "U" a nearest x2 upsampling; the last convolution has no ReLU.
_DECODER_PLAN: list[tuple[int, int] | str] = [
    (512, 256),
    "U",
    (256, 256),
    (256, 256),
    (256, 256),
    (256, 128),
    "U",
    (128, 128),
    (128, 64),
    "U",
    (64, 64),
    (64, 3),
]

ENCODER_MODULES = 31  # modules 0..30, ending with relu4_1
FULL_VGG_MODULES = 53
# Outputs of modules 3, 10, 17 and 30 of the community layout.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
_LAYER_ENDS = (4, 11, 18, 31)
logger = logging.getLogger(__name__)


class WeightsError(ValueError):
    """A weight file is missing, unreadable or does not match the network layout."""


def build_vgg_layers(full: bool = False) -> nn.Sequential:
    """The vgg_normalised layout: a 1x1 convolution that maps RGB in [0, 1] to the mean-subtracted
    BGR VGG expects, then reflection-padded 3x3 convolutions with ReLU and ceil-mode pooling."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    for item in _VGG_PLAN:
        if isinstance(item, str):  # "M"
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(item[0], item[1], 3), nn.ReLU()]
    assert len(layers) == FULL_VGG_MODULES
    return nn.Sequential(*(layers if full else layers[:ENCODER_MODULES]))


def build_decoder_layers() -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in _DECODER_PLAN:
        if isinstance(item, str):  # "U"
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(item[0], item[1], 3), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no ReLU after the last convolution


def _sniff(path: Path) -> str:
    """What kind of file ``path`` is, from its first bytes: 'zip' (torch.save), 'pickle' (the
    legacy torch.save format), 'safetensors', 'empty', 'text' or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) > 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= 100_000_000:
        return "safetensors"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    return "text" if all(ch.isprintable() or ch in "\r\n\t" for ch in text) else "unknown"


def _read_safetensors(path: Path, what: str) -> dict[str, Tensor]:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError as exc:
        raise WeightsError(f"{what} weights at {path} are a .safetensors file: pip install safetensors") from exc
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{what} weights at {path} are a damaged .safetensors file ({exc})") from exc


def load_state_dict_file(path: str | Path, what: str) -> dict[str, Tensor]:
    """Reads a state dict (torch.save or safetensors; nothing in the file can run code), turning
    every way a file can be broken, or be something else, into one clear WeightsError."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} weights not found at {path}")
    try:
        kind = _sniff(path)
    except OSError as exc:
        raise WeightsError(f"{what} weights at {path} cannot be read ({exc.strerror or exc})") from exc
    if kind == "empty":
        raise WeightsError(f"{what} weights at {path}: the file is empty; delete it and download it again")
    if kind == "text":
        raise WeightsError(
            f"{what} weights at {path}: a text file, not a weight file (an error page saved instead of the download?)"
        )
    if kind == "safetensors":
        return unwrap_state_dict(_read_safetensors(path, what), f"{what} weights at {path}", what)
    if kind == "unknown":
        raise WeightsError(
            f"{what} weights at {path} are truncated or corrupt, or not a weight file (neither "
            "torch.save nor safetensors); delete the file and download it again"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(
            f"{what} weights at {path} are truncated or corrupt, or not a weight file "
            f"({type(exc).__name__}: {first}); delete the file and download it again"
        ) from exc
    except Exception as exc:  # unpickling a non-tensor object is refused with weights_only=True
        named = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line]
        raise WeightsError(
            f"{what} weights at {path} are not a plain state dict: they hold Python objects, "
            f"which are never loaded, for safety{f' ({named[0]})' if named else ''}"
        ) from exc
    return unwrap_state_dict(obj, f"{what} weights at {path}", what)


# The keys of a training checkpoint (adain_cuda's checkpoint.pt).
_CHECKPOINT_KEYS = {"decoder", "optimizer", "iteration"}


def _strip_prefix(state: dict[str, object]) -> dict[str, object]:
    """Keys saved through a wrapper ('module.' from DataParallel/DDP, 'net.' from these modules)
    in the community layout's form."""
    for prefix in ("module.", "net."):
        if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def unwrap_state_dict(obj: object, source: str, what: str) -> dict[str, Tensor]:
    """The state dict a loaded file holds: the dict of tensors itself, one nested under
    'state_dict' or 'model', or a training checkpoint's decoder; anything else is a WeightsError
    that says what the file holds instead."""
    if isinstance(obj, Mapping) and _CHECKPOINT_KEYS <= set(obj):
        if what != "decoder":
            raise WeightsError(
                f"{source} are an adain_cuda training checkpoint (iteration {obj.get('iteration')}), not {what} weights"
            )
        logger.info(f"{source}: a training checkpoint; using its decoder (iteration {obj.get('iteration')})")
        obj = obj["decoder"]
    elif isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        nested = [k for k in ("state_dict", "model", "model_state_dict", "net") if isinstance(obj.get(k), Mapping)]
        if nested:
            obj = obj[nested[0]]
    if not isinstance(obj, Mapping):
        got = f"a single tensor of shape {tuple(obj.shape)}" if isinstance(obj, Tensor) else type(obj).__name__
        raise WeightsError(
            f"{source} are not a state dict (the file holds {got}); expected the community "
            f"layout, e.g. {'vgg_normalised.pth' if what == 'VGG' else 'decoder.pth'}"
        )
    state = _strip_prefix(dict(obj))
    odd = [f"{k!r} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, Tensor)]
    if odd:
        raise WeightsError(
            f"{source} are not a state dict of tensors: {', '.join(odd[:4])}"
            f"{' and more' if len(odd) > 4 else ''} (keys {sorted(map(str, state))[:6]})"
        )
    return state  # type: ignore[return-value]


def _tensor_problem(t: Tensor) -> str | None:
    """Why a tensor cannot be a network weight, or None."""
    if t.layout != torch.strided:
        return f"{t.layout} (sparse) tensor"
    if t.is_quantized:
        return f"quantized {t.dtype} tensor"
    if t.device.type == "meta":
        return "meta tensor without data"
    if t.is_complex() or not t.is_floating_point():
        return f"{t.dtype} tensor, not floating point"
    return None


def _check_state_dict(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str) -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: file {tuple(state[k].shape)}, expected {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong))
    if problems:
        raise WeightsError(f"{source} does not match the expected layout: " + ", ".join(problems))
    kinds = [f"{k}: {why}" for k in expected if (why := _tensor_problem(state[k])) is not None]
    if kinds:
        raise WeightsError(
            f"{source} holds tensors no network weight can be: {'; '.join(kinds[:4])}"
            f"{' and more' if len(kinds) > 4 else ''}"
        )
    broken = [k for k in expected if state[k].is_floating_point() and not torch.isfinite(state[k]).all()]
    if broken:
        raise WeightsError(
            f"{source} has NaN or infinite values in {', '.join(broken[:6])}"
            f"{' and more' if len(broken) > 6 else ''}: the file is damaged or comes from a "
            "training run that diverged; use an earlier checkpoint's decoder"
        )


def run_blocks(blocks, x: Tensor) -> list[Tensor]:
    """Runs ``blocks`` in turn and returns every block's output (relu1_1 .. relu4_1)."""
    feats = []
    for block in blocks:
        x = block(x)
        feats.append(x)
    return feats


class Encoder(nn.Module):
    """VGG-19 to relu4_1 (frozen in training). ``forward`` returns relu4_1; ``layers`` returns
    relu1_1, relu2_1, relu3_1 and relu4_1 for the style loss."""

    def __init__(self) -> None:
        super().__init__()
        self.net = build_vgg_layers()
        ends = (0, *_LAYER_ENDS)
        self._slices = [self.net[a:b] for a, b in zip(ends, ends[1:])]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def layers(self, x: Tensor) -> list[Tensor]:
        return run_blocks(self._slices, x)

    def load_weights(self, source: str | Path | Mapping[str, Tensor]) -> Encoder:
        """Loads vgg_normalised weights: the full 53-module file or its first 31 modules."""
        name = str(source) if not isinstance(source, Mapping) else "the given state dict"
        state = (
            load_state_dict_file(source, "VGG")
            if not isinstance(source, Mapping)
            else unwrap_state_dict(source, "the given VGG state dict", "VGG")
        )
        full = build_vgg_layers(full=True).state_dict()
        encoder_keys = self.net.state_dict()
        if any(k not in encoder_keys for k in state):
            _check_state_dict(state, full, f"VGG weights {name}")
        else:
            _check_state_dict(state, encoder_keys, f"VGG weights {name}")
        self.net.load_state_dict({k: v for k, v in state.items() if k in encoder_keys})
        return self


class Decoder(nn.Module):
    """The AdaIN decoder: relu4_1 features to an RGB image (not clamped)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = build_decoder_layers()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def load_weights(self, source: str | Path | Mapping[str, Tensor]) -> Decoder:
        name = str(source) if not isinstance(source, Mapping) else "the given state dict"
        state = (
            load_state_dict_file(source, "decoder")
            if not isinstance(source, Mapping)
            else unwrap_state_dict(source, "the given decoder state dict", "decoder")
        )
        _check_state_dict(state, self.net.state_dict(), f"decoder weights {name}")
        self.net.load_state_dict(state)
        return self

    def community_state_dict(self) -> dict[str, Tensor]:
        """The state dict in the community decoder.pth layout (keys '1.weight', ...)."""
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
