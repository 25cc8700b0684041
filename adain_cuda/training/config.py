"""Training options, with the defaults of the paper and the original code (docs/training.md):
Adam, lr 1e-4 decayed as lr / (1 + 5e-5 * i), batch 8, 160,000 iterations, style weight 10,
content weight 1, images resized to a shorter side of 512 and randomly cropped to 256."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields

__all__ = ["TrainConfig"]


def _option(default, help: str, **cli):
    """A field with its command-line help (and argparse extras such as ``choices``) as metadata,
    so the ``train`` command is built from these fields."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help, **cli})
    return field(default=default, metadata={"help": help, **cli})


# The seeds of the data stream and the crops are derived from this one by small multiples.
SEED_MAX = 2**32 - 1


@dataclass
class TrainConfig:
    content_dir: str = field(metadata={"help": "content images (searched recursively), e.g. MS-COCO"})
    style_dir: str = field(metadata={"help": "style images (searched recursively), e.g. WikiArt"})
    output_dir: str = _option("runs/adain", "run folder: checkpoints, logs, samples", flags=("-o", "--output"))
    vgg: str | None = _option(None, "vgg_normalised.pth (default: the cached download, fetched on first use)")
    random_encoder: bool = _option(
        False,
        "a RANDOM encoder instead of the VGG weights: only to test the "
        "machinery, the losses and the decoder are meaningless",
    )
    device: str = _option("auto", "auto (CUDA if available), cpu, cuda or cuda:N")
    lr: float = _option(1e-4, "Adam learning rate")
    lr_decay: float = _option(5e-5, "learning-rate decay: lr / (1 + decay * iteration)")
    batch_size: int = _option(8, "global batch size, split over the processes of a distributed run")
    max_iter: int = _option(160_000, "iterations")
    style_weight: float = _option(10.0, "weight of the style loss")
    content_weight: float = _option(1.0, "weight of the content loss")
    layer_weights: list[float] | None = _option(
        None, "style weight per layer relu1_1..relu4_1, comma-separated (default all 1)"
    )
    image_size: int = _option(512, "shorter side after resizing (0: keep)")
    crop_size: int = _option(256, "random square crop")
    save_every: int = _option(2000, "checkpoint interval in iterations")
    log_every: int = _option(10, "log interval in iterations")
    sample_every: int = _option(1000, "sample grid interval in iterations (0: off)")
    workers: int = _option(lambda: min(4, os.cpu_count() or 1), "data loader workers per process")
    seed: int = _option(0, "seed of the data stream, crops and initial weights")
    precision: str = _option(
        "auto", "auto: bf16 autocast on GPUs that support it, else fp32", choices=("auto", "bf16", "fp32")
    )
    channels_last: bool | None = _option(None, "networks in channels_last: auto (on for CUDA), on or off")
    fast: bool | None = _option(
        None,
        "run the networks through their exact rewrites (docs/fast-path.md; the same "
        "gradients): auto (on for CUDA), on or off",
    )
    compile: bool = _option(False, "torch.compile the training step")
    losses: str = _option(
        "fused", "fused (adain_cuda kernels) or reference (plain PyTorch)", choices=("fused", "reference")
    )
    resume: str | None = _option(None, "continue from a checkpoint (without a path: OUTPUT/checkpoint.pt)")
    overwrite: bool = _option(False, "start a new run in an OUTPUT folder that holds one (its files are replaced)")
    tensorboard: bool = _option(True, "TensorBoard scalars and sample grids")
    log_dir: str | None = _option(None, "TensorBoard folder (default: OUTPUT/tensorboard)")
    progress: bool = _option(True, "progress bar", cli=False)

    def validate(self) -> None:
        """Raises ValueError naming the first option that cannot work."""
        positive = ("batch_size", "max_iter", "crop_size", "save_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}")
        for name in ("image_size", "sample_every", "workers", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must not be negative, got {getattr(self, name)}")
        if not 0 <= self.seed <= SEED_MAX:
            raise ValueError(f"`seed` must be a whole number from 0 to {SEED_MAX}, got {self.seed}")
        if 0 < self.image_size < self.crop_size:
            raise ValueError(
                f"`crop_size` {self.crop_size} is larger than `image_size` {self.image_size}: "
                f"the random crop must fit in the resized image"
            )
        for name in ("lr", "style_weight", "content_weight", "lr_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
                raise ValueError(
                    f"`{name}` must be a finite number{' above 0' if name == 'lr' else ' of at least 0'}, got {value}"
                )
        if self.layer_weights is not None:
            if len(self.layer_weights) != 4:
                raise ValueError(
                    f"`layer_weights` needs 4 weights (relu1_1, relu2_1, relu3_1, relu4_1), got "
                    f"{len(self.layer_weights)}"
                )
            if not all(math.isfinite(w) and w >= 0 for w in self.layer_weights):
                raise ValueError(f"`layer_weights` must be finite and non-negative, got {self.layer_weights}")
        for f in fields(self):  # the options with a fixed set of values (precision, losses)
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"`{f.name}` must be one of {', '.join(choices)}, got {getattr(self, f.name)!r}")
        if self.vgg is not None and self.random_encoder:
            raise ValueError("give either `vgg` or `random_encoder`, not both")
