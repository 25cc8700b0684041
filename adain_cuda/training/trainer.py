"""Training AdaIN decoders with the fused AdaIN op and the fused losses.

    from adain_cuda.training import TrainConfig, Trainer
    Trainer(TrainConfig(content_dir="coco", style_dir="wikiart", vgg="vgg_normalised.pth")).train()

Defaults (:class:`~adain_cuda.training.config.TrainConfig`) follow the paper and the original
code. The encoder is frozen; only the decoder trains. Several GPUs: launch with
``torchrun --nproc_per_node N`` (DistributedDataParallel, NCCL on GPUs, gloo on the CPU); the batch
size is the global one, split over the processes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import NoReturn

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .._device import cpu_computes_bf16, place
from ..images import imaging
from ..models import STYLE_LAYERS, Decoder, Encoder, FastDecoder, FastEncoder, FastOptions, weights
from ..ops import adain, reference, style_content_loss
from .checkpoints import (
    CHECKPOINT,
    CheckpointError,
    RunFolder,
    check_finite_weights,
    deferred_interrupts,
    read_checkpoint,
    save,
    write_checkpoint,
)
from .config import TrainConfig
from .data import EndlessSampler, ImageFolder, collate, find_images
from .runlog import RunLog

__all__ = ["TrainConfig", "Trainer"]

logger = logging.getLogger(__name__)


def _he_init(module: torch.nn.Module) -> None:
    """Random weights that keep activations at a sensible scale through the stack, so a random
    encoder still exercises every part of training."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.normal_(m.bias, std=0.05)


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = c = config
        c.validate()
        self.out = Path(c.output_dir)
        placement = place(c.device)
        self.rank, self.world, self.device = placement.rank, placement.world, placement.device
        self.main = placement.main
        # The folder and the data first: a busy or wrong folder, or an empty image folder, is an
        # error before anything heavy happens.
        self.folder = RunFolder(self.out, main=self.main)
        self.folder.check_new_run(resume=c.resume, overwrite=c.overwrite)
        self.content_files, self.style_files = find_images(c.content_dir), find_images(c.style_dir)
        cuda = self.device.type == "cuda"
        self.amp = cuda and torch.cuda.is_bf16_supported() if c.precision == "auto" else c.precision == "bf16"
        if self.amp and not cuda and not cpu_computes_bf16():  # emulated bf16 is the slow path here
            self._say("`precision` bf16 on a CPU without native bfloat16: training in float32 (faster here)")
            self.amp = False
        self.memory_format = (
            torch.channels_last
            if (c.channels_last if c.channels_last is not None else cuda)
            else torch.contiguous_format
        )
        self.log: RunLog | None = None  # the run log of train() (kept after it for bad_files)
        torch.manual_seed(c.seed)
        self._build_networks(fast=cuda if c.fast is None else c.fast)
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=c.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda i: 1.0 / (1.0 + c.lr_decay * i))
        self.iteration = 0
        self.folder.acquire().release()  # a folder another trainer owns is an error now, not later
        if c.resume is not None:
            self.load_checkpoint(self.folder.resume_path(c.resume))
        self._step = torch.compile(self._losses) if c.compile else self._losses

    def _build_networks(self, fast: bool) -> None:
        """The frozen encoder, the trained decoder and the networks the step runs: with ``fast``
        the exact rewrites (the encoder's rewritten weights fixed, the decoder's derived from its
        parameters on every call, so gradients and optimizer steps reach ``self.decoder``)."""
        c = self.config
        self.encoder = Encoder()
        if c.random_encoder:
            _he_init(self.encoder)
            self._say(
                "WARNING: `random_encoder`: the encoder is RANDOM. Losses, samples and the trained "
                "decoder are MEANINGLESS; use this only to test the machinery. Leave it out to train "
                "with the VGG weights.",
                warn=True,
            )
        else:  # the given file, else the cached (or first downloaded) vgg_normalised.pth
            self.encoder.load_weights(weights.resolve("vgg", c.vgg))
        # Module.to takes memory_format at run time; its type stubs do not list it.
        self.encoder.to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]
        self.encoder.eval().requires_grad_(False)
        self.decoder = Decoder()
        self.decoder.to(self.device, memory_format=self.memory_format).train()  # type: ignore[call-overload]
        self.fast = fast
        self.step_encoder: Encoder | FastEncoder = FastEncoder(self.encoder) if fast else self.encoder
        self.model: nn.Module = FastDecoder(self.decoder, FastOptions(live_weights=True)) if fast else self.decoder
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    @property
    def bad_files(self) -> set[str]:
        """The unusable files met so far (reported once each)."""
        return self.log.bad_files if self.log is not None else set()

    # -------------------------------------------------------------------- pieces ----
    def _say(self, message: str, warn: bool = False) -> None:
        """A message from the main process, once, through logging (the CLI shows it)."""
        if self.main:
            logger.log(logging.WARNING if warn else logging.INFO, message)

    def _loader(self, files: list, seed: int) -> DataLoader:
        c = self.config
        sampler = EndlessSampler(
            len(files),
            batch=c.batch_size,
            seed=seed,
            start=self.iteration * c.batch_size,
            rank=self.rank,
            world=self.world,
        )
        dataset = ImageFolder(files, size=c.image_size, crop=c.crop_size, seed=seed)
        return DataLoader(
            dataset,
            batch_size=c.batch_size // self.world,
            sampler=sampler,
            num_workers=c.workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=c.workers > 0,
            prefetch_factor=4 if c.workers > 0 else None,
        )

    def _losses(self, content: torch.Tensor, style: torch.Tensor):
        c = self.config
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            with torch.no_grad():
                style_feats = self.step_encoder.layers(style)
                target = adain(self.step_encoder(content), style_feats[-1])
            decoded = self.model(target)
            feats = self.step_encoder.layers(decoded)
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
        return {
            "decoder": self.decoder.community_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            "config": dataclasses.asdict(self.config),
            "world_size": self.world,
        }

    def save_checkpoint(self) -> Path | None:
        """Full state to checkpoint.pt and the decoder alone (community decoder.pth layout) to
        decoder_iter_N.pth, both written atomically; rank 0 only."""
        if not self.main:
            return None
        return write_checkpoint(self.state(), self.out)

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        state = read_checkpoint(path)
        try:
            self.decoder.load_weights(state["decoder"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.iteration = int(state["iteration"])
            torch.set_rng_state(state["rng"]["torch"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"`resume` {path}: the checkpoint does not fit this run ({exc})") from exc
        if state["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        old = state.get("config", {})
        changed = [
            k
            for k in (
                "batch_size",
                "lr",
                "lr_decay",
                "style_weight",
                "content_weight",
                "crop_size",
                "image_size",
                "seed",
                "layer_weights",
            )
            if k in old and old[k] != getattr(self.config, k)
        ]
        if "lr" in changed:
            # The optimizer's state carries the old rate: the new --lr takes over from here, decayed
            # by the schedule as if the run had used it from the start.
            self.scheduler.base_lrs = [self.config.lr for _ in self.scheduler.base_lrs]
            factor = 1.0 / (1.0 + self.config.lr_decay * self.iteration)
            for group in self.optimizer.param_groups:
                group["initial_lr"] = self.config.lr
                group["lr"] = self.config.lr * factor
            self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        note = f" (options changed since: {', '.join(changed)}; the new values apply)" if changed else ""
        if state.get("world_size") != self.world:
            note += f"; it was saved by {state.get('world_size')} process(es)"
        self._say(f"resumed from {path} at iteration {self.iteration}{note}")

    # -------------------------------------------------------------------- logging ----
    def _sample_grid(self) -> None:
        """A contact sheet of fixed content and style images through the current decoder."""
        from ..images.sheet import contact_sheet

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
        sheet = contact_sheet(contents, styles, results, cell=self.config.crop_size)
        imaging.save_pil(sheet, folder / f"iter_{self.iteration:07d}.png")
        if self.log is not None:  # the same grid in TensorBoard, beside the losses
            self.log.image("samples", imaging.load_image(sheet), self.iteration)

    def _pick_samples(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The first three usable content and style images, center-cropped, loaded once."""
        crop = self.config.crop_size
        picked = []
        for files in (self.content_files, self.style_files):
            images = []
            for p in files:
                try:
                    images.append(imaging.prepare(imaging.load_image(p), crop, crop=True))
                except imaging.ImageError:
                    continue
                if len(images) == 3:
                    break
            picked.append(images)
        return picked[0], picked[1]

    # ---------------------------------------------------------------------- train ----
    def train(self) -> dict[str, float]:
        """Runs to max_iter (or from a resumed iteration). Ctrl-C or SIGTERM ends the step in
        progress, saves a checkpoint and raises KeyboardInterrupt; a second one stops at once
        without one. A diverged run stops with :class:`~.checkpoints.Diverged` and saves nothing.
        Returns the last logged losses."""
        self.folder.acquire()  # held until the run ends: one trainer per folder
        try:
            return self._train()
        finally:
            self.folder.release()

    def _train(self) -> dict[str, float]:
        c = self.config
        if c.resume is None and c.overwrite and self.main and self.iteration == 0:
            (self.out / "log.csv").unlink(missing_ok=True)  # a fresh run over an old one: its log goes
        self._samples = self._pick_samples() if self.main and c.sample_every else ([], [])
        content_iter = iter(self._loader(self.content_files, c.seed))
        style_iter = iter(self._loader(self.style_files, c.seed + 1))
        self.log = log = RunLog(
            self.out,
            main=self.main,
            tensorboard=c.tensorboard,
            progress=c.progress,
            total=c.max_iter,
            initial=self.iteration,
            tensorboard_dir=Path(c.log_dir) if c.log_dir else None,
        )
        last: dict[str, float] = {}
        window_start, window_images = time.perf_counter(), 0
        try:
            with deferred_interrupts() as stop:
                while self.iteration < c.max_iter:
                    try:
                        content, bad_c = next(content_iter)
                        style, bad_s = next(style_iter)
                    except Exception:
                        # Ctrl-C in a terminal reaches the loader's workers too, which then end:
                        # no step has begun, so the state is whole and saved below.
                        if not stop.requested:
                            raise
                        self._stop_between_steps(log)
                    log.skipped(bad_c + bad_s)
                    out = self.step(content, style)
                    window_images += content.shape[0] * self.world
                    if self.iteration % c.log_every == 0 or self.iteration == c.max_iter:
                        last = self._log_values(out, window_images / (time.perf_counter() - window_start))
                        log.record(self.iteration, last, time.time())
                        window_start, window_images = time.perf_counter(), 0
                        if not math.isfinite(last["loss"]):  # stop before a NaN step spoils anything more
                            check_finite_weights(self.decoder.community_state_dict(), self.iteration)
                    if c.sample_every and self.main and self.iteration % c.sample_every == 0:
                        self._sample_grid()
                    if self.iteration % c.save_every == 0:
                        self.save_checkpoint()
                    log.advance()
                    if self._stop_requested(stop.requested):
                        self._stop_between_steps(log)
        finally:
            log.close()
        path = self.save_checkpoint()
        if self.main:
            save(self.decoder.community_state_dict(), self.out / "decoder.pth")
            self._say(
                f"done: {self.iteration} iterations; decoder saved to {self.out / 'decoder.pth'} "
                f"(and {path}); {len(self.bad_files)} unusable file(s) skipped"
            )
        return last

    def _stop_between_steps(self, log: RunLog) -> NoReturn:
        """Saves a checkpoint (the state is whole between steps) and stops the run."""
        log.bar.close()
        path = self.save_checkpoint()
        self._say(
            f"interrupted at iteration {self.iteration}; checkpoint saved ({path}). "
            f"Continue with `resume` {self.out / CHECKPOINT}"
        )
        raise KeyboardInterrupt(f"interrupted at iteration {self.iteration}; checkpoint saved")

    def _stop_requested(self, here: bool) -> bool:
        """Whether any process was asked to stop (all of them stop at the same step)."""
        if self.world == 1:
            return here
        flag = torch.tensor([1.0 if here else 0.0], device=self.device)
        dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def _log_values(self, out, images_per_s: float) -> dict[str, float]:
        """The losses averaged over the processes, the per-layer style terms, lr and throughput."""
        values = torch.stack([out["loss"].float(), out["content"].float(), out["style"].float()])
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        loss, content, style = (float(v) for v in values)
        with torch.no_grad():  # per-layer style terms, only at log steps
            per_layer = [
                float(reference.style_loss([f.float()], [s.float()])) for f, s in zip(out["feats"], out["style_feats"])
            ]
        return {
            "loss": loss,
            "content": content,
            "style": style,
            "lr": float(self.scheduler.get_last_lr()[0]),
            "images_per_s": images_per_s,
            **{f"style_{n}": v for n, v in zip(STYLE_LAYERS, per_layer)},
        }
