"""The community PyTorch port's flags work as spelled there, lists may be space-separated (shell
globs), and the geometry follows its torchvision pipeline."""

import pytest
import torch
from PIL import Image

from adain_cuda import cli
from adain_cuda.cli import build_parser
from adain_cuda.cli.train import config_from
from adain_cuda.images import imaging

from community_layout import write_weight_files


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    vgg, dec = write_weight_files(tmp_path_factory.mktemp("nets"))
    return ["--vgg", str(vgg), "--decoder", str(dec), "--device", "cpu"]


def image(path, h, w, seed=0):
    imaging.save_image(torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed)), path)
    return str(path)


def test_the_ports_test_flags(nets, tmp_path):
    contents = tmp_path / "content"
    contents.mkdir()
    image(contents / "newyork.png", 60, 95)
    a, b = image(tmp_path / "a.png", 40, 40, 1), image(tmp_path / "b.png", 44, 50, 2)
    out = tmp_path / "out"
    code = cli.main(
        [
            "stylize",
            "--content_dir",
            str(contents),
            "--style",
            f"{a},{b}",
            "--style_interpolation_weights",
            "1,1",
            "--content_size",
            "40",
            "--style_size",
            "32",
            "--save_ext",
            ".jpg",
            "--preserve_color",
            "-o",
            str(out),
            *nets,
        ]
    )
    assert code == 0
    [result] = out.iterdir()
    assert result.suffix == ".jpg"
    # torchvision's Resize(40) of 60x95: 40 x int(40 * 95 / 60) = 40 x 63 (rounding would give 63.33 -> 63,
    # but e.g. 683x1024 at 512 is 512x767 by truncation, 768 by rounding)
    assert Image.open(result).size == (63, 40)
    code = cli.main(
        [
            "stylize",
            "--content",
            str(contents / "newyork.png"),
            "--style",
            a,
            "--crop",
            "--content_size",
            "40",
            "--style_size",
            "32",
            "-o",
            str(tmp_path / "crop"),
            *nets,
        ]
    )
    assert code == 0 and Image.open(next((tmp_path / "crop").iterdir())).size == (40, 40)


def test_space_separated_lists_as_shell_globs_give_them(nets, tmp_path):
    paths = [image(tmp_path / f"c{i}.png", 32, 32, i) for i in range(3)]
    style = image(tmp_path / "s.png", 32, 32, 9)
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "stylize",
                "--content",
                *paths,
                "--style",
                style,
                "--content-size",
                "0",
                "--style-size",
                "0",
                "-o",
                str(out),
                *nets,
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [f"c{i}_stylized_s.png" for i in range(3)]


def test_the_ports_train_flags_fill_the_config():
    args = build_parser().parse_args(
        [
            "train",
            "--content_dir",
            "coco",
            "--style_dir",
            "wikiart",
            "--save_dir",
            "experiments",
            "--log_dir",
            "logs",
            "--lr",
            "2e-4",
            "--lr_decay",
            "1e-5",
            "--max_iter",
            "123",
            "--batch_size",
            "4",
            "--style_weight",
            "3",
            "--content_weight",
            "0.5",
            "--n_threads",
            "3",
            "--save_model_interval",
            "77",
        ]
    )
    c = config_from(args)
    assert (c.content_dir, c.style_dir, c.output_dir, c.log_dir) == ("coco", "wikiart", "experiments", "logs")
    assert (c.lr, c.lr_decay, c.max_iter, c.batch_size) == (2e-4, 1e-5, 123, 4)
    assert (c.style_weight, c.content_weight, c.workers, c.save_every) == (3.0, 0.5, 3, 77)


def test_every_option_shows_its_default_and_help_ends_with_examples(capsys):
    for command in ("stylize", "grid", "recolor", "video", "train", "weights", "info", "demo"):
        assert cli.main([command, "--help"]) == 0
        text = capsys.readouterr().out
        tail = text[text.index("examples:") :]  # the last section, after every option
        assert "options:" not in tail and "\n  adain-cuda " in tail or "\n  python " in tail, command
    cli.main(["stylize", "--help"])
    text = capsys.readouterr().out
    assert "(default: 512)" in text and "(default: png)" in text and "(default: off)" in text
