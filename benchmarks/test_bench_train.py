"""Training: one step at batch 8, 256x256 (CUDA; batch 2, 64x64 on the CPU), random weights.

  adain_cuda          the Trainer's step: fused AdaIN and losses, bf16 autocast + channels_last and the
                      exact network rewrites on CUDA (--fast auto)
  adain_cuda_plain_networks  the same with the plain layer stacks (--fast off): what the rewrites buy
  plain_fp32_eager    the same step written plainly in PyTorch, fp32
  plain_bf16_compiled the plain step under torch.compile, bf16 autocast, channels_last
and, with the data loader on real images ($ADAIN_CUDA_BENCH_DATA/content and /style, repeated;
synthetic without it),
images per second over STEPS steps of Trainer.train.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adain_cuda import reference
from adain_cuda.images import imaging
from adain_cuda.training import TrainConfig, Trainer

from common import CUDA, DEVICE, SMOKE, record, synchronized

BATCH, CROP, STEPS = (8, 256, 200) if CUDA else (2, 64, 6)
if SMOKE:
    BATCH, CROP, STEPS = 2, 32, 2
# A folder with content/ and style/ images of real sizes; synthetic images without it.
DATA = Path(os.environ["ADAIN_CUDA_BENCH_DATA"]) if os.environ.get("ADAIN_CUDA_BENCH_DATA") else None


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    for kind in ("content", "style"):
        (root / kind).mkdir()
        files = sorted((DATA / kind).glob("*")) if DATA is not None else []
        for copy in range(4):  # repeated so an epoch is longer than a batch
            if files:
                for f in files:
                    (root / kind / f"{copy}_{f.name}").symlink_to(f)
            else:
                for i in range(6):
                    imaging.save_image(torch.rand(3, CROP + 40, CROP + 60), root / kind / f"{copy}_{i}.png")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def make_trainer(folders, out, **kw):
    cfg = TrainConfig(
        content_dir=str(folders / "content"),
        style_dir=str(folders / "style"),
        output_dir=str(out),
        batch_size=BATCH,
        crop_size=CROP,
        image_size=max(CROP, 512 if CUDA else 96),
        max_iter=STEPS,
        log_every=50,
        save_every=10**9,
        sample_every=0,
        tensorboard=False,
        progress=False,
        device=DEVICE,
        random_encoder=True,
        overwrite=True,
        **kw,
    )
    return Trainer(cfg)


def plain_step(trainer, compiled: bool):
    """The same training step in plain PyTorch: reference AdaIN and losses."""
    enc, dec = trainer.encoder, trainer.decoder
    opt = torch.optim.Adam(dec.parameters(), lr=1e-4)

    def losses(content, style):
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=compiled and CUDA):
            with torch.no_grad():
                s_feats = enc.layers(style)
                t = reference.adain(enc(content), s_feats[-1])
            feats = enc.layers(dec(t))
            return F.mse_loss(feats[-1], t) + 10 * reference.style_loss(feats, s_feats)

    if compiled:
        torch._dynamo.reset()  # a fresh compile (dynamo falls back to eager after 8 recompilations)
    fn = torch.compile(losses) if compiled else losses

    def step(content, style):
        loss = fn(content, style)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


# adain_cuda_reference_losses: the package's trainer with its losses in plain PyTorch
# (--losses reference), to show what the fused losses buy in the same step.
@pytest.mark.parametrize(
    "provider",
    [
        "adain_cuda",
        "adain_cuda_plain_networks",
        "adain_cuda_reference_losses",
        "plain_fp32_eager",
        "plain_bf16_compiled",
    ],
)
def test_train_step(benchmark, folders, tmp_path, provider):
    benchmark.group = f"train step batch {BATCH} {CROP}x{CROP}"
    fmt = torch.channels_last if (CUDA and provider != "plain_fp32_eager") else torch.contiguous_format
    package = provider.startswith("adain_cuda")
    trainer = make_trainer(
        folders,
        tmp_path,
        precision="auto" if package else "fp32",
        channels_last=fmt == torch.channels_last,
        losses="reference" if provider == "adain_cuda_reference_losses" else "fused",
        fast=False if provider == "adain_cuda_plain_networks" else None,
    )
    g = torch.Generator().manual_seed(0)
    content = torch.rand(BATCH, 3, CROP, CROP, generator=g).to(DEVICE).contiguous(memory_format=fmt)
    style = torch.rand(BATCH, 3, CROP, CROP, generator=g).to(DEVICE).contiguous(memory_format=fmt)
    if package:
        run = lambda: trainer.step(content, style)  # noqa: E731
    else:
        step = plain_step(trainer, compiled=provider == "plain_bf16_compiled")
        run = lambda: step(content, style)  # noqa: E731
    run = synchronized(run)
    if CUDA:  # the peak over warm-up and timed steps (weights, optimizer state, activations)
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        run()
    benchmark.pedantic(run, rounds=20 if CUDA else 3, iterations=1, warmup_rounds=2 if CUDA else 0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else float("nan")
    record(benchmark, images=BATCH, provider=provider, batch=BATCH, crop=CROP, peak_gib=round(peak, 2))


def test_train_with_loader(benchmark, folders, tmp_path):
    benchmark.group = f"train {STEPS} steps with the data loader, batch {BATCH} {CROP}x{CROP}"
    trainer = make_trainer(folders, tmp_path, workers=4 if CUDA else 1)
    run = synchronized(trainer.train)
    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    record(benchmark, images=BATCH * STEPS, provider="adain_cuda_end_to_end", steps=STEPS)
