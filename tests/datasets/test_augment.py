"""StyleAugment: each image stylized with probability p by a random bank style at a random alpha,
same shape, dtype, device and memory format out, reproducible with a generator, normalisation
undone and redone, identity in eval mode."""

import pytest
import torch

from adain_cuda.augment import IMAGENET_MEAN, IMAGENET_STD, StyleAugment
from adain_cuda.images import imaging
from adain_cuda.stylize import StyleBankError, build_style_bank

from helpers import cpu_stylizer


@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    root = tmp_path_factory.mktemp("styles")
    g = torch.Generator().manual_seed(1)
    for i in range(5):
        imaging.save_image(torch.rand(3, 32, 32, generator=g), root / f"s{i}.png")
    return root


@pytest.fixture(scope="module")
def bank(stylizer, styles):
    return build_style_bank(stylizer, styles, style_size=32, progress=False)


def batch(n=6, h=24, w=32, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def changed(a, b):
    return [not torch.equal(x, y) for x, y in zip(a, b)]


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
def test_same_shape_dtype_and_layout_out(stylizer, bank, layout, dtype):
    x = batch().to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    out = StyleAugment(bank, stylizer, p=1.0, generator=torch.Generator().manual_seed(0))(x)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert out.is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")
    assert all(changed(out, x)) and 0 <= out.min() and out.max() <= 1 and torch.isfinite(out).all()


def test_probability_selects_images_and_the_others_pass_unchanged(stylizer, bank):
    x = batch(n=32, h=16, w=16)
    assert torch.equal(StyleAugment(bank, stylizer, p=0.0)(x), x)
    out = StyleAugment(bank, stylizer, p=0.5, generator=torch.Generator().manual_seed(3))(x)
    flags = changed(out, x)
    assert 4 <= sum(flags) <= 28  # about half (binomial(32, 0.5): far outside this is a bug)


def test_a_seeded_generator_repeats_the_draws(stylizer, bank):
    x = batch()

    def augmented(seed):
        aug = StyleAugment(bank, stylizer, p=0.5, alpha=(0.2, 0.9), generator=torch.Generator().manual_seed(seed))
        return [aug(x), aug(x)]

    first, again, other = augmented(5), augmented(5), augmented(6)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert not torch.equal(first[0], first[1])  # later batches draw anew


def test_each_image_matches_its_own_draw(stylizer, bank):
    """Image i is transfer_each of that image with the style and alpha the generator drew."""
    x = batch(n=4)
    aug = StyleAugment(bank, stylizer, p=1.0, alpha=(0.3, 0.8), generator=torch.Generator().manual_seed(9))
    out = aug(x)
    g = torch.Generator().manual_seed(9)
    torch.rand(4, generator=g)
    rows = torch.randint(len(bank), (4,), generator=g)
    alphas = 0.3 + 0.5 * torch.rand(4, generator=g)
    for i in range(4):
        one = stylizer.transfer_each(
            x[i : i + 1], bank.mean[rows[i : i + 1]], bank.std[rows[i : i + 1]], alphas[i : i + 1]
        )
        torch.testing.assert_close(out[i], one[0].clamp(0, 1), rtol=1e-5, atol=1e-5)


def test_normalised_images_come_back_normalised(stylizer, bank):
    x = batch()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalised = (x - mean) / std
    plain = StyleAugment(bank, stylizer, p=1.0, generator=torch.Generator().manual_seed(2))(x)
    aug = StyleAugment(bank, stylizer, p=1.0, normalize="imagenet", generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(aug(normalised) * std + mean, plain, rtol=1e-5, atol=1e-5)


def test_eval_mode_and_empty_batches_pass_unchanged(stylizer, bank):
    aug = StyleAugment(bank, stylizer, p=1.0).eval()
    x = batch()
    assert aug(x) is x
    aug.train()
    empty = x[:0]
    assert aug(empty).shape == empty.shape


def test_takes_a_bank_file_or_a_folder_and_refuses_other_encoder_weights(stylizer, bank, styles, tmp_path):
    bank.save(tmp_path / "bank.pt")
    x = batch(n=2)
    g = torch.Generator
    from_file = StyleAugment(tmp_path / "bank.pt", stylizer, p=1.0, generator=g().manual_seed(1))(x)
    from_folder = StyleAugment(styles, stylizer, p=1.0, style_size=32, generator=g().manual_seed(1))(x)
    torch.testing.assert_close(from_file, from_folder)
    with pytest.raises(StyleBankError, match="other encoder weights"):
        StyleAugment(tmp_path / "bank.pt", cpu_stylizer(vgg_seed=8))
    with pytest.raises(StyleBankError, match="other encoder weights"):
        StyleAugment(bank, cpu_stylizer(vgg_seed=8))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(p=1.5), "`p`"),
        (dict(alpha=(0.8, 0.2)), "`alpha`"),
        (dict(alpha=1.2), "`alpha`"),
        (dict(normalize="cifar"), "`normalize`"),
        (dict(normalize=((0.5, 0.5), (0.2, 0.2))), "`normalize`"),
        (dict(normalize=((0.5,) * 3, (0.0,) * 3)), "positive"),
    ],
)
def test_bad_options_are_refused(stylizer, bank, options, message):
    with pytest.raises(ValueError, match=message):
        StyleAugment(bank, stylizer, **options)


@pytest.mark.parametrize(
    "bad", [torch.rand(3, 8, 8), torch.rand(2, 1, 8, 8), torch.zeros(2, 3, 8, 8, dtype=torch.uint8)]
)
def test_bad_batches_are_refused(stylizer, bank, bad):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) float"):
        StyleAugment(bank, stylizer, p=1.0)(bad)
