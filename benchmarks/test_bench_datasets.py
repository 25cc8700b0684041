"""Dataset stylization and style augmentation, random weights:

  stylize_dataset   adain-cuda's stylize_dataset over a folder of ImageNet-sized JPEGs (about
                    375x500, kept at their size) with a style bank of 512 px styles (built once
                    beforehand, as docs/datasets.md recommends; its time is in the JSON as
                    bank_seconds): read, stylize, write, manifest
  anchors           the algorithm of the stylization scripts in use today on the same inputs: one
                    image at a time, the style image read, resized to 512 and encoded again for
                    every content, the plain networks (community nn.Sequential layout, NCHW,
                    eager, pure-PyTorch AdaIN), each result written as JPEG
  style_augment     StyleAugment on a batch of 64 images at 224 px, p = 0.5, on the device
Images per second in the JSON (images_per_s); RESULTS.md gives the ratio.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
import torch

from adain_cuda import reference
from adain_cuda.augment import StyleAugment
from adain_cuda.datasets import stylize_dataset
from adain_cuda.images import imaging
from adain_cuda.stylize import build_style_bank

from common import CUDA, DEVICE, SMOKE, plain_networks, random_stylizer, record, synchronized

CONTENTS = 48 if CUDA else 8
CONTENT, STYLE = (375, 500), 512
AUG_BATCH, AUG_SIZE = 64, 224
if SMOKE:
    CONTENTS, CONTENT, STYLE, AUG_BATCH, AUG_SIZE = 3, (30, 40), 32, 4, 32


def smooth_image(h: int, w: int, seed: int) -> torch.Tensor:
    """A photo-like test image: low-frequency colour fields plus a little noise (random noise
    alone compresses unlike a photo)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 32), max(2, w // 32), generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
    return (img + 0.05 * torch.randn(3, h, w, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    for i in range(CONTENTS):
        h, w = CONTENT if i % 3 else CONTENT[::-1]  # landscape and portrait, as in ImageNet
        imaging.save_image(smooth_image(h, w, i), root / "content" / f"class{i % 2}" / f"img{i}.jpg")
    for i in range(4):
        imaging.save_image(smooth_image(STYLE, STYLE * 5 // 4, 100 + i), root / "styles" / f"painting{i}.jpg")
    return root


def anchors(root: Path, out: Path, vgg, dec) -> int:
    """One image at a time, the style encoded again for every content (the scripts' algorithm)."""
    styles = sorted((root / "styles").iterdir())
    contents = sorted((root / "content").rglob("*.jpg"))
    with torch.no_grad():
        for path in contents:
            name = path.relative_to(root / "content").as_posix()
            style_path = styles[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(styles)]
            content = imaging.load_image(path)[None].to(DEVICE)
            style = imaging.resize_shorter(imaging.load_image(style_path), STYLE)[None].to(DEVICE)
            target = reference.adain(vgg(content), vgg(style))
            result = dec(target)[..., : content.shape[-2], : content.shape[-1]]
            imaging.save_image(result[0].cpu(), out / name)
    return len(contents)


@pytest.mark.parametrize("provider", ["stylize_dataset", "anchors"])
def test_dataset(benchmark, inputs, tmp_path, provider):
    benchmark.group = f"stylize {CONTENTS} images of {CONTENT[1]}x{CONTENT[0]}, {STYLE} px styles, fp32"
    rounds = iter(range(100))
    if provider == "stylize_dataset":
        stylizer = random_stylizer()
        start = time.perf_counter()
        bank = build_style_bank(stylizer, inputs / "styles", style_size=STYLE, progress=False)
        bank_seconds = time.perf_counter() - start

        def run():
            out = tmp_path / f"out{next(rounds)}"
            report = stylize_dataset(stylizer, inputs / "content", bank, out, progress=False)
            assert report.written == CONTENTS and not report.failed
            shutil.rmtree(out)

        benchmark.extra_info["bank_seconds"] = round(bank_seconds, 2)
    else:
        vgg, dec = plain_networks(torch.float32)

        def run():
            out = tmp_path / f"out{next(rounds)}"
            assert anchors(inputs, out, vgg, dec) == CONTENTS
            shutil.rmtree(out)

    run = synchronized(run)
    benchmark.pedantic(run, rounds=3 if CUDA else 2, iterations=1, warmup_rounds=1 if CUDA else 0)
    record(benchmark, images=CONTENTS, provider=provider, content=f"{CONTENT[1]}x{CONTENT[0]}", style=STYLE)


def test_style_augment(benchmark, inputs):
    benchmark.group = f"StyleAugment, batch of {AUG_BATCH} at {AUG_SIZE} px, p=0.5, fp32"
    stylizer = random_stylizer()
    bank = build_style_bank(stylizer, inputs / "styles", style_size=STYLE, progress=False)
    augment = StyleAugment(bank, stylizer, p=0.5, generator=torch.Generator().manual_seed(0))
    images = torch.rand(AUG_BATCH, 3, AUG_SIZE, AUG_SIZE, device=DEVICE)
    run = synchronized(lambda: augment(images))
    run()
    benchmark.pedantic(run, rounds=10 if CUDA else 2, iterations=1, warmup_rounds=1 if CUDA else 0)
    record(benchmark, images=AUG_BATCH, provider="style_augment", batch=AUG_BATCH, size=AUG_SIZE)
