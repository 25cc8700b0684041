"""`adain-cuda stylize` and `adain-cuda grid` end to end on generated images and random weights."""

import pytest
import torch
from PIL import Image

from adain_cuda import cli
from adain_cuda.images import imaging

from community_layout import write_weight_files


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    vgg, dec = write_weight_files(tmp_path_factory.mktemp("nets"))
    return ["--vgg", str(vgg), "--decoder", str(dec), "--device", "cpu", "--content-size", "48", "--style-size", "32"]


@pytest.fixture
def images(tmp_path):
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    for folder, names in ((contents, ["lake", "city"]), (styles, ["wave", "stars"])):
        folder.mkdir()
        for i, name in enumerate(names):
            imaging.save_image(torch.rand(3, 40 + 8 * i, 56), folder / f"{name}.png")
    return contents, styles


def test_directories_every_pair(nets, images, tmp_path, capsys):
    contents, styles = images
    out = tmp_path / "out"
    code = cli.main(
        [
            "stylize",
            "--content-dir",
            str(contents),
            "--style-dir",
            str(styles),
            "-o",
            str(out),
            "--save-ext",
            ".jpg",
            "--grid",
            *nets,
        ]
    )
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "city_stylized_stars.jpg",
            "city_stylized_wave.jpg",
            "lake_stylized_stars.jpg",
            "lake_stylized_wave.jpg",
            "contact_sheet.jpg",
        ]
    )
    assert Image.open(out / "lake_stylized_wave.jpg").size == (67, 48)  # content resized to 48 px
    assert "4 written" in capsys.readouterr().out


def test_existing_results_and_inputs_are_never_overwritten(nets, images, tmp_path, capsys):
    contents, styles = images
    args = ["stylize", "--content", str(contents / "lake.png"), "--style", str(styles / "wave.png"), *nets]
    # the output folder is the content folder and the name collides with an input
    (contents / "lake_stylized_wave.png").write_bytes((contents / "lake.png").read_bytes())
    before = (contents / "lake_stylized_wave.png").read_bytes()
    assert cli.main([*args, "-o", str(contents)]) == 0
    assert "exists (use --overwrite" in capsys.readouterr().out
    assert (contents / "lake_stylized_wave.png").read_bytes() == before
    assert cli.main([*args, "-o", str(contents), "--overwrite"]) == 0
    assert (contents / "lake_stylized_wave.png").read_bytes() != before
    # an output named like an input gets another name, even with --overwrite: here the earlier
    # result sits in the content folder, so it is itself an input
    inputs = {p.name: p.read_bytes() for p in contents.iterdir()}
    code = cli.main(
        [
            "stylize",
            "--content-dir",
            str(contents),
            "--style",
            str(styles / "wave.png"),
            "-o",
            str(contents),
            "--overwrite",
            *nets,
        ]
    )
    assert code == 0
    assert all((contents / name).read_bytes() == data for name, data in inputs.items())
    assert (contents / "lake_stylized_wave_2.png").exists()
    assert (contents / "lake_stylized_wave_stylized_wave.png").exists()


def test_bad_file_in_a_batch_is_reported_and_the_rest_done(nets, images, tmp_path, capsys):
    contents, styles = images
    (contents / "broken.jpg").write_text("not an image")
    code = cli.main(
        [
            "stylize",
            "--content-dir",
            str(contents),
            "--style",
            str(styles / "wave.png"),
            "-o",
            str(tmp_path / "out"),
            *nets,
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "not a readable image" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["city_stylized_wave.png", "lake_stylized_wave.png"]


def test_interpolation_and_masks(nets, images, tmp_path):
    contents, styles = images
    out = tmp_path / "out"
    base = [
        "stylize",
        "--content",
        str(contents / "lake.png"),
        "--style",
        f"{styles / 'wave.png'},{styles / 'stars.png'}",
        "-o",
        str(out),
        *nets,
    ]
    assert cli.main([*base, "--style-interpolation-weights", "1,3", "--preserve-color"]) == 0
    mask = tmp_path / "mask.png"
    Image.new("RGB", (56, 40), (255, 255, 255)).save(mask)
    assert cli.main([*base, "--mask", str(mask)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["lake_interpolated_wave_stars.png", "lake_masked_wave_stars.png"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--style-interpolation-weights", "1"],
            "--style-interpolation-weights: 1 interpolation weight(s) for 2 styles",
        ),
        (["--style-interpolation-weights", "1,-1"], "must not be negative"),
        (["--style-interpolation-weights", "0,0"], "all zero"),
        (["--alpha", "1.5"], "--alpha: must be in [0, 1]"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_options_exit_2_with_a_message(nets, images, extra, message, capsys):
    contents, styles = images
    code = cli.main(
        [
            "stylize",
            "--content",
            str(contents / "lake.png"),
            "--style",
            f"{styles / 'wave.png'},{styles / 'stars.png'}",
            *nets,
            *extra,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_empty_folder_and_missing_weights(nets, tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert cli.main(["stylize", "--content-dir", str(tmp_path / "empty"), "--style", "s.png", *nets]) == 2
    assert "no images found" in capsys.readouterr().err
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(tmp_path / "cache"))
    code = cli.main(["stylize", "--content", "c.png", "--style", "s.png", "--no-download"])
    assert code == 2
    err = capsys.readouterr().err
    assert "vgg_normalised.pth" in err and "as --vgg" in err


def test_grid_command(nets, images, tmp_path):
    contents, styles = images
    out = tmp_path / "out"
    assert (
        cli.main(
            ["stylize", "--content-dir", str(contents), "--style", str(styles / "wave.png"), "-o", str(out), *nets]
        )
        == 0
    )
    sheet = tmp_path / "sheet.png"
    assert (
        cli.main(
            [
                "grid",
                "--content-dir",
                str(contents),
                "--style-dir",
                str(styles),
                "--results",
                str(out),
                "-o",
                str(sheet),
                "--cell",
                "64",
            ]
        )
        == 0
    )
    assert Image.open(sheet).size == (3 * 68 + 4, 3 * 68 + 4)
