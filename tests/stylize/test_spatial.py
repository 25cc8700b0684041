"""Masked AdaIN: overlapping masks are normalised, uncovered pixels keep the content."""

import torch

from adain_cuda import reference
from adain_cuda.stylize.spatial import masked_adain


def test_overlapping_masks_are_normalised_and_uncovered_pixels_kept():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(1, 4, 6, 6, generator=g) * 2 + 1
    stats = [(torch.randn(1, 4, generator=g), torch.rand(1, 4, generator=g) + 0.5) for _ in range(2)]
    both = torch.ones(2, 6, 6)  # the two masks cover everything twice over: weights sum to 2
    # biased statistics: with a constant weight per pixel the weighted variance is the plain one
    out = masked_adain(content, stats, both, unbiased=False)
    expected = sum(0.5 * reference.adain_from_stats(content, m, s, unbiased=False) for m, s in stats)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    half = torch.zeros(2, 6, 6)
    half[0, :, :3] = 1  # left half to style 0, the right half to nobody
    out = masked_adain(content, stats, half)
    torch.testing.assert_close(out[..., 3:], content[..., 3:])
