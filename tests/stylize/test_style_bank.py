"""Style banks: every style encoded once, in batches of one size, equal to encoding each alone;
unreadable styles skipped and listed; the file runs no code, is checked on loading and refused
with other encoder weights; the command writes it atomically and never over a file unasked."""

import pickle

import pytest
import torch

from adain_cuda import cli
from adain_cuda.images import imaging
from adain_cuda.models import Decoder, Encoder
from adain_cuda.stylize import StyleBank, StyleBankError, Stylizer, build_style_bank

from community_layout import DECODER_CONVS, VGG_CONVS, random_state, write_weight_files


def stylizer(vgg_seed=1):
    return Stylizer(
        Encoder().load_weights(random_state(VGG_CONVS, vgg_seed)),
        Decoder().load_weights(random_state(DECODER_CONVS, 2)),
        device="cpu",
    )


@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    root = tmp_path_factory.mktemp("styles")
    (root / "sub").mkdir()
    g = torch.Generator().manual_seed(0)
    sizes = [(40, 40), (40, 40), (32, 48), (40, 40), (24, 24), (32, 48), (40, 40)]
    for i, (h, w) in enumerate(sizes):
        folder = root / "sub" if i % 3 == 0 else root
        imaging.save_image(torch.rand(3, h, w, generator=g), folder / f"s{i}.{'PNG' if i == 2 else 'png'}")
    (root / "broken.jpg").write_text("not an image")
    imaging.save_image(torch.rand(3, 4, 4, generator=g), root / "tiny.png")
    return root


@pytest.mark.parametrize("batch_size", [1, 2, 3, 8])
def test_batched_bank_equals_each_style_alone(styles, batch_size):
    s = stylizer()
    bank = build_style_bank(s, styles, style_size=0, batch_size=batch_size, progress=False)
    assert len(bank) == 7 and bank.mean.shape == bank.std.shape == (7, 512)
    assert sorted(p for p, _ in bank.skipped) == ["broken.jpg", "tiny.png"]
    assert bank.paths == sorted(bank.paths) and "sub/s0.png" in bank.paths and "s2.PNG" in bank.paths
    for index, rel in enumerate(bank.paths):
        mean, std = s.encode_style(s.prepare_image(styles / rel, 0, False)[None])
        got_mean, got_std = bank.stats(index)
        assert torch.allclose(got_mean, mean, rtol=1e-5, atol=1e-6) and torch.allclose(
            got_std, std, rtol=1e-5, atol=1e-6
        )
    assert s.style_encodes <= 7 + 7  # the bank's encodes (at most one per style) and the checks above


def test_a_bank_round_trips_and_refuses_other_encoder_weights(styles, tmp_path):
    s = stylizer()
    bank = build_style_bank(s, styles, style_size=32, progress=False)
    path = bank.save(tmp_path / "bank.pt")
    loaded = StyleBank.load(path, stylizer=s)
    assert loaded.paths == bank.paths and loaded.sha256 == bank.sha256 and torch.equal(loaded.mean, bank.mean)
    with pytest.raises(StyleBankError, match="other encoder weights"):
        StyleBank.load(path, stylizer=stylizer(vgg_seed=9))
    with pytest.raises(FileExistsError):
        bank.save(path)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


BAD_BANKS = {
    "not a bank": (lambda p: torch.save({"a": torch.zeros(2)}, p), "not a style bank"),
    "code": (lambda p: p.write_bytes(pickle.dumps(Payload())), "not a readable style bank"),
    "text": (lambda p: p.write_text("hello"), "not a readable style bank"),
    "wrong rows": (
        lambda p: torch.save(
            {
                "format": "adain_cuda.style_bank/1",
                "paths": ["a"],
                "sha256": ["x"],
                "mean": torch.zeros(2, 4),
                "std": torch.ones(2, 4),
                "encoder": "e",
            },
            p,
        ),
        "2 rows for 1 styles",
    ),
    "nan": (
        lambda p: torch.save(
            {
                "format": "adain_cuda.style_bank/1",
                "paths": ["a"],
                "sha256": ["x"],
                "mean": torch.full((1, 4), float("nan")),
                "std": torch.ones(1, 4),
                "encoder": "e",
            },
            p,
        ),
        "NaN",
    ),
    "integer stats": (
        lambda p: torch.save(
            {
                "format": "adain_cuda.style_bank/1",
                "paths": ["a"],
                "sha256": ["x"],
                "mean": torch.zeros(1, 4, dtype=torch.long),
                "std": torch.ones(1, 4),
                "encoder": "e",
            },
            p,
        ),
        "float32",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BANKS))
def test_bad_bank_files_are_refused_by_what_they_hold(case, tmp_path, capsys):
    write, words = BAD_BANKS[case]
    write(tmp_path / "bank.pt")
    with pytest.raises(StyleBankError, match=words):
        StyleBank.load(tmp_path / "bank.pt")
    assert "code ran" not in capsys.readouterr().out


def test_the_command_writes_a_bank_and_lists_what_it_skipped(styles, tmp_path, capsys):
    vgg, dec = write_weight_files(tmp_path)
    nets = ["--vgg", str(vgg), "--decoder", str(dec), "--device", "cpu", "--no-download"]
    out = tmp_path / "bank.pt"
    assert cli.main(["style-bank", str(styles), "-o", str(out), "--style-size", "32", *nets]) == 1
    captured = capsys.readouterr()
    assert "8 styles" in captured.out and "broken.jpg" in captured.err  # 4x4 is usable at 32 px
    before = out.read_bytes()
    assert cli.main(["style-bank", str(styles), "-o", str(out), *nets]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert len(StyleBank.load(out)) == 8
