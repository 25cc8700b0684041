"""Training AdAIN decoders with the fused AdaIN op and the fused losses.

    from adain_cuda.trainer import TrainConfig, Trainer
    Trainer(TrainConfig(content_dir="coco", style_dir="wikiart", vgg="vgg_normalised.pth")).train()

Defaults follow the paper and the original code (conventions.md section 4): Adam, lr 1e-4 decayed
as lr / (1 + 5e-5 * i), batch 8, 160,000 iterations, style weight 10, content weight 1, images
resized to a shorter side of 512 and randomly cropped to 256. The encoder is frozen; only the
decoder trains. Several GPUs: launch with ``torchrun --nproc_per_node N`` (DistributedDataParallel,
NCCL on GPUs, gloo on the CPU); the batch size is the global one, split over the processes.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from . import imaging, reference
from .data import EndlessSampler, ImageFolder, collate, find_images
from .losses import style_content_loss
from .models import Decoder, Encoder, STYLE_LAYERS
from .ops import adain
from .stylizer import parse_device

__all__ = ["TrainConfig", "Trainer"]

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    content_dir: str
    style_dir: str
    output_dir: str = "runs/adain"
    vgg: str | None = None               # None: a random encoder, for tests only (loud warning)
    device: str = "auto"
    lr: float = 1e-4
    lr_decay: float = 5e-5
    batch_size: int = 8                  # global: split over the processes of a distributed run
    max_iter: int = 160_000
    style_weight: float = 10.0
    content_weight: float = 1.0
    layer_weights: list[float] | None = None  # per style layer (relu1_1..relu4_1); default all 1
    image_size: int = 512                # shorter side after resizing (0: keep)
    crop_size: int = 256
    save_every: int = 2000
    log_every: int = 10
    sample_every: int = 1000             # 0: no sample grids
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    seed: int = 0
    precision: str = "auto"              # auto: bf16 autocast on GPUs that support it, else fp32
    channels_last: bool | None = None    # None: on CUDA
    compile: bool = False                # torch.compile the training step
    losses: str = "fused"                # "fused" (adain_cuda kernels) or "reference" (plain PyTorch)
    resume: str | None = None            # a checkpoint path, or "auto" for output_dir/checkpoint.pt
    tensorboard: bool = True
    progress: bool = True


def _distributed() -> tuple[int, int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _he_init(module: torch.nn.Module) -> None:
    """Random weights that keep activations at a sensible scale through the stack, so a random
    encoder still exercises every part of training."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.normal_(m.bias, std=0.05)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = c = config
        if c.losses not in ("fused", "reference"):
            raise ValueError(f"losses must be 'fused' or 'reference', got {c.losses!r}")
        self.rank, self.world, local_rank = _distributed()
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and c.device != "cpu" else "gloo"
            dist.init_process_group(backend)
        self.device = parse_device(f"cuda:{local_rank}" if self.world > 1 and c.device in ("auto", "cuda")
                                   and torch.cuda.is_available() else c.device)
        if self.device.type == "cuda":
            if self.device.index is None:  # "auto" / "cuda": set_device needs an index
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.device)
        self.main = self.rank == 0
        # Data first: an empty folder is an error before anything heavy happens.
        self.content_files, self.style_files = find_images(c.content_dir), find_images(c.style_dir)
        cuda = self.device.type == "cuda"
        if c.precision == "auto":
            self.amp = cuda and torch.cuda.is_bf16_supported()
        elif c.precision in ("bf16", "fp32"):
            self.amp = c.precision == "bf16"
        else:
            raise ValueError(f"precision must be auto, bf16 or fp32, got {c.precision!r}")
        self.memory_format = torch.channels_last if (c.channels_last if c.channels_last is not None else cuda) \
            else torch.contiguous_format

        torch.manual_seed(c.seed)
        self.encoder = Encoder()
        if c.vgg is not None:
            self.encoder.load_weights(c.vgg)
        else:
            _he_init(self.encoder)
            self._say("WARNING: no --vgg weights given: the encoder is RANDOM. Losses, samples and the "
                      "trained decoder are MEANINGLESS; use this only to test the machinery. Pass --vgg "
                      "vgg_normalised.pth (adain-cuda weights download) for real training.", warn=True)
        self.encoder = self.encoder.to(self.device, memory_format=self.memory_format).eval().requires_grad_(False)
        self.decoder = Decoder().to(self.device, memory_format=self.memory_format).train()
        self.model = self.decoder
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.decoder, device_ids=[self.device.index] if cuda else None)
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=c.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda i: 1.0 / (1.0 + c.lr_decay * i))
        self.iteration = 0
        self.out = Path(c.output_dir)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        if c.resume is not None:
            path = self.out / CHECKPOINT if c.resume == "auto" else Path(c.resume)
            if path.exists():
                self.load_checkpoint(path)
            elif c.resume != "auto":
                raise FileNotFoundError(f"--resume {path}: no such checkpoint")
        self._step = torch.compile(self._losses) if c.compile else self._losses
        self.bad_files: set[str] = set()

    # -------------------------------------------------------------------- pieces ----
    def _say(self, message: str, warn: bool = False) -> None:
        if not self.main:
            return
        if warn:
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        print(message, file=sys.stderr if warn else sys.stdout, flush=True)

    def _loader(self, files: list, seed: int) -> DataLoader:
        c = self.config
        sampler = EndlessSampler(len(files), batch=c.batch_size, seed=seed, start=self.iteration * c.batch_size,
                                 rank=self.rank, world=self.world)
        dataset = ImageFolder(files, size=c.image_size, crop=c.crop_size, seed=seed)
        return DataLoader(dataset, batch_size=c.batch_size // self.world, sampler=sampler,
                          num_workers=c.workers, collate_fn=collate, pin_memory=self.device.type == "cuda",
                          persistent_workers=c.workers > 0, prefetch_factor=4 if c.workers > 0 else None)

    def _losses(self, content: torch.Tensor, style: torch.Tensor):
        c = self.config
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            with torch.no_grad():
                style_feats = self.encoder.layers(style)
                target = adain(self.encoder(content), style_feats[-1])
            decoded = self.model(target)
            feats = self.encoder.layers(decoded)
            if c.losses == "fused":
                loss_c, loss_s = style_content_loss(feats, style_feats, target, layer_weights=c.layer_weights)
            else:
                loss_c = F.mse_loss(feats[-1], target)
                loss_s = reference.style_loss(feats, style_feats, layer_weights=c.layer_weights)
            loss = c.content_weight * loss_c + c.style_weight * loss_s
        return loss, loss_c.detach(), loss_s.detach(), feats, style_feats

    def step(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, float | torch.Tensor]:
        """One optimisation step on a batch; returns the (local) losses."""
        content = content.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        style = style.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        loss, loss_c, loss_s, feats, style_feats = self._step(content, style)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        return {"loss": loss.detach(), "content": loss_c, "style": loss_s, "feats": feats, "style_feats": style_feats}

    # --------------------------------------------------------------- checkpoints ----
    def state(self) -> dict:
        return {"decoder": self.decoder.community_state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "iteration": self.iteration,
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                "config": dataclasses.asdict(self.config), "world_size": self.world}

    def save_checkpoint(self) -> Path | None:
        """Full state to checkpoint.pt and the decoder alone (community decoder.pth layout) to
        decoder_iter_N.pth, both written atomically; rank 0 only."""
        if not self.main:
            return None
        _atomic_save(self.state(), self.out / CHECKPOINT)
        path = self.out / f"decoder_iter_{self.iteration}.pth"
        _atomic_save(self.decoder.community_state_dict(), path)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.decoder.load_weights(state["decoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = int(state["iteration"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        old = state.get("config", {})
        changed = [k for k in ("batch_size", "lr", "lr_decay", "style_weight", "content_weight", "crop_size",
                               "image_size", "seed", "layer_weights") if k in old and old[k] != getattr(self.config, k)]
        note = f" (options changed since: {', '.join(changed)})" if changed else ""
        if state.get("world_size") != self.world:
            note += f"; it was saved by {state.get('world_size')} process(es)"
        self._say(f"resumed from {path} at iteration {self.iteration}{note}")

    # -------------------------------------------------------------------- logging ----
    def _sample_grid(self) -> None:
        """A contact sheet of fixed content and style images through the current decoder."""
        from .sheet import contact_sheet

        contents, styles = self._samples
        results = {}
        self.decoder.eval()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            for i, ci in enumerate(contents):
                for j, sj in enumerate(styles):
                    t = adain(self.encoder(ci[None].to(self.device)), self.encoder(sj[None].to(self.device)))
                    results[(i, j)] = self.decoder(t)[0].float().cpu()
        self.decoder.train()
        folder = self.out / "samples"
        folder.mkdir(exist_ok=True)
        contact_sheet(contents, styles, results, cell=self.config.crop_size).save(
            folder / f"iter_{self.iteration:07d}.png")

    def _pick_samples(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The first three usable content and style images, center-cropped, loaded once."""
        crop = self.config.crop_size
        picked = []
        for files in (self.content_files, self.style_files):
            images = []
            for p in files:
                try:
                    images.append(imaging.center_crop(imaging.resize_shorter(imaging.load_image(p), crop), crop))
                except imaging.ImageError:
                    continue
                if len(images) == 3:
                    break
            picked.append(images)
        return picked[0], picked[1]

    # ---------------------------------------------------------------------- train ----
    def train(self) -> dict[str, float]:
        """Runs to max_iter (or from a resumed iteration); Ctrl-C saves a checkpoint first.
        Returns the last logged losses."""
        from tqdm.auto import tqdm

        c = self.config
        self._samples = self._pick_samples() if self.main and c.sample_every else ([], [])
        content_iter = iter(self._loader(self.content_files, c.seed))
        style_iter = iter(self._loader(self.style_files, c.seed + 1))
        writer = self._tensorboard() if self.main and c.tensorboard else None
        log_file, log = self._csv()
        bar = tqdm(total=c.max_iter, initial=self.iteration, desc="training", unit="it",
                   disable=not (self.main and c.progress), dynamic_ncols=True)
        last: dict[str, float] = {}
        window_start, window_images = time.perf_counter(), 0
        try:
            while self.iteration < c.max_iter:
                content, bad_c = next(content_iter)
                style, bad_s = next(style_iter)
                self._report_bad(bad_c + bad_s, bar)
                out = self.step(content, style)
                window_images += content.shape[0] * self.world
                if self.iteration % c.log_every == 0 or self.iteration == c.max_iter:
                    last = self._log(out, window_images / (time.perf_counter() - window_start), writer, log, bar)
                    window_start, window_images = time.perf_counter(), 0
                if c.sample_every and self.main and self.iteration % c.sample_every == 0:
                    self._sample_grid()
                if self.iteration % c.save_every == 0:
                    self.save_checkpoint()
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            path = self.save_checkpoint()
            self._say(f"interrupted at iteration {self.iteration}; checkpoint saved ({path}). Continue with "
                      f"--resume {self.out / CHECKPOINT}")
            raise
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
            if writer is not None:
                writer.close()
        path = self.save_checkpoint()
        if self.main:
            _atomic_save(self.decoder.community_state_dict(), self.out / "decoder.pth")
            self._say(f"done: {self.iteration} iterations; decoder saved to {self.out / 'decoder.pth'} "
                      f"(and {path}); {len(self.bad_files)} unusable file(s) skipped")
        return last

    def _report_bad(self, messages: list[str], bar) -> None:
        for message in messages:
            if message not in self.bad_files:
                self.bad_files.add(message)
                if self.main:
                    bar.write(f"skipped: {message}")

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self._say("TensorBoard logging is off: pip install tensorboard (the CSV log is still written)")
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def _csv(self):
        if not self.main:
            return None, None
        path = self.out / "log.csv"
        new = not path.exists()
        f = open(path, "a", newline="")
        log = csv.writer(f)
        if new:
            log.writerow(["iteration", "loss", "content", "style", *[f"style_{n}" for n in STYLE_LAYERS],
                          "lr", "images_per_s", "time"])
        return f, log

    def _log(self, out, images_per_s: float, writer, log, bar) -> dict[str, float]:
        values = torch.stack([out["loss"].float(), out["content"].float(), out["style"].float()])
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        loss, content, style = (float(v) for v in values)
        with torch.no_grad():  # per-layer style terms, only at log steps
            per_layer = [float(reference.style_loss([f.float()], [s.float()]))
                         for f, s in zip(out["feats"], out["style_feats"])]
        lr = self.scheduler.get_last_lr()[0]
        result = {"loss": loss, "content": content, "style": style, "lr": lr, "images_per_s": images_per_s,
                  **{f"style_{n}": v for n, v in zip(STYLE_LAYERS, per_layer)}}
        if not self.main:
            return result
        if not all(math.isfinite(v) for v in (loss, content, style)):
            bar.write(f"warning: non-finite loss at iteration {self.iteration}")
        bar.set_postfix(content=f"{content:.3f}", style=f"{style:.3f}", img_s=f"{images_per_s:.1f}")
        log.writerow([self.iteration, loss, content, style, *per_layer, lr, images_per_s, time.time()])
        if writer is not None:
            writer.add_scalar("loss/total", loss, self.iteration)
            writer.add_scalar("loss/content", content, self.iteration)
            writer.add_scalar("loss/style", style, self.iteration)
            for name, v in zip(STYLE_LAYERS, per_layer):
                writer.add_scalar(f"loss/style_{name}", v, self.iteration)
            writer.add_scalar("lr", lr, self.iteration)
            writer.add_scalar("throughput/images_per_s", images_per_s, self.iteration)
        return result
