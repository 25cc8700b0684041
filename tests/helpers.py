"""Helpers shared by the test modules (on the path through the pytest configuration)."""

import pytest
import torch

CUDA = torch.cuda.is_available()

# Every test runs on the CPU, and on CUDA where a GPU is present (skipped, not dropped, without).
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not CUDA, reason="needs a CUDA device")]),
]


def features(shape, device, dtype=torch.float32, *, seed=None, channels_last=False):
    """Fresh random feature maps with per-channel offsets and scales, never zeros."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    n, c = shape[:2]
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    scale = torch.rand(1, c, 1, 1, generator=g, dtype=torch.float64) * 2 + 0.1
    offset = torch.randn(1, c, 1, 1, generator=g, dtype=torch.float64) * 2
    x = (x * scale + offset).to(device=device, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def assert_as_accurate_as_pytorch(got, exact, pytorch, what="result"):
    """A float16/bfloat16 ``got`` no further from the float64 ``exact`` than twice ``pytorch`` (the
    reference computed by PyTorch in the same dtype), or than one rounding of the largest value
    to the dtype: low-precision results are judged against what PyTorch itself achieves, not a
    fixed tolerance."""
    err = (got.double() - exact).abs().max().item()
    torch_err = (pytorch.double() - exact).abs().max().item()
    floor = torch.finfo(got.dtype).eps * exact.abs().max().item()
    assert err <= max(2 * torch_err, floor), (
        f"{what}: error {err:.3g} against float64, PyTorch's own in {got.dtype} {torch_err:.3g}"
    )


def assert_one_rounding_from(got, fp32_result, what="result"):
    """A float16/bfloat16 ``got`` that kernels computed in float32 and rounded once: within one
    rounding (plus float32-level noise) of ``fp32_result``, the same computation in float32 on
    the same inputs, element by element. Catches statistics accumulated in the low dtype, which
    the max-error comparisons alone let through."""
    exact = fp32_result.float()
    tol = torch.finfo(got.dtype).eps * exact.abs() + 1e-6 * exact.abs().max()
    worst = ((got.float() - exact).abs() / tol).max().item()
    assert worst <= 1.0, f"{what}: {worst:.3g} roundings from the float32 computation"


def cpu_stylizer(vgg_seed: int = 3, decoder_seed: int = 4):
    """A CPU Stylizer with random weights in the community layout."""
    from adain_cuda.models import Decoder, Encoder
    from adain_cuda.stylize import Stylizer

    from community_layout import DECODER_CONVS, VGG_CONVS, random_state

    return Stylizer(
        Encoder().load_weights(random_state(VGG_CONVS, vgg_seed)),
        Decoder().load_weights(random_state(DECODER_CONVS, decoder_seed)),
        device="cpu",
    )


def train_config(root, vgg_file, out, **kw):
    """A small TrainConfig over ``root``/content and ``root``/style with the VGG weights
    ``vgg_file``, writing to ``out``; ``kw`` overrides (``vgg=None`` too). The CPU, also on a
    GPU machine: exact resume and the fp32 comparisons are CPU properties."""
    from adain_cuda.training import TrainConfig

    base = dict(
        content_dir=str(root / "content"),
        style_dir=str(root / "style"),
        output_dir=str(out),
        vgg=str(vgg_file),
        device="cpu",
        batch_size=2,
        max_iter=2,
        image_size=32,
        crop_size=32,
        log_every=1,
        save_every=1000,
        sample_every=0,
        workers=0,
        progress=False,
        tensorboard=False,
    )
    base.update(kw)
    return TrainConfig(**base)
