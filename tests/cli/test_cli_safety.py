"""What a user's files and inputs can do to `adain-cuda stylize` / `grid`: nothing is lost or
overwritten, bad inputs get one line each and the batch carries on, no traceback."""

import os
import struct
import zlib

import pytest
import torch
from PIL import Image

from adain_cuda import cli
from adain_cuda.images import imaging

from community_layout import DECODER_CONVS, random_state, write_weight_files


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nets")
    write_weight_files(folder)
    broken = random_state(DECODER_CONVS, 4)
    broken["28.weight"][0, 0, 0, 0] = float("nan")  # a diverged run's decoder
    torch.save(broken, folder / "nan_dec.pth")
    return folder


@pytest.fixture
def nets(weight_files):
    return [
        "--vgg",
        str(weight_files / "vgg.pth"),
        "--decoder",
        str(weight_files / "dec.pth"),
        "--device",
        "cpu",
        "--content-size",
        "32",
        "--style-size",
        "32",
    ]


def write(path, h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    imaging.save_image(torch.rand(3, h, w, generator=g), path)
    return path


def bomb_png(path, width=100_000, height=100_000):
    """A tiny PNG whose header claims 10 gigapixels."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )
    return path


def stylize(*args):
    return cli.main(["stylize", *map(str, args)])


def test_same_stem_in_one_folder_gives_two_results(nets, tmp_path, capsys):
    contents = tmp_path / "c"
    contents.mkdir()
    write(contents / "photo.jpg"), write(contents / "photo.png", seed=1)
    style = write(tmp_path / "s.png", seed=2)
    out = tmp_path / "out"
    assert stylize("--content-dir", contents, "--style", style, "-o", out, *nets) == 0
    assert sorted(p.name for p in out.iterdir()) == ["photo_jpg_stylized_s.png", "photo_png_stylized_s.png"]
    assert "2 written" in capsys.readouterr().out


def test_a_failed_overwrite_keeps_the_previous_result(nets, tmp_path, monkeypatch):
    content, style, out = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1), tmp_path / "out"
    assert stylize("--content", content, "--style", style, "-o", out, *nets) == 0
    result = out / "c_stylized_s.png"
    before = result.read_bytes()

    def full_disk(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")  # what a full disk leaves
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    assert stylize("--content", content, "--style", style, "-o", out, "--overwrite", *nets) == 1
    assert result.read_bytes() == before
    assert [p.name for p in out.iterdir()] == ["c_stylized_s.png"]  # no partial file either


def test_output_that_is_a_file_is_one_error(nets, tmp_path, capsys):
    content, style = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1)
    (tmp_path / "taken").write_text("a file")
    assert stylize("--content", content, "--style", style, "-o", tmp_path / "taken", *nets) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("weights", ["nan,1", "inf,1", "1,-inf"])
def test_non_finite_interpolation_weights_are_refused(nets, tmp_path, weights, capsys):
    content, a, b = write(tmp_path / "c.png"), write(tmp_path / "a.png", seed=1), write(tmp_path / "b.png", seed=2)
    code = stylize(
        "--content",
        content,
        "--style",
        f"{a},{b}",
        "--style-interpolation-weights",
        weights,
        "-o",
        tmp_path / "out",
        *nets,
    )
    assert code == 2 and "finite" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_decoder_with_nan_weights_is_refused(nets, weight_files, tmp_path, capsys):
    content, style = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1)
    args = [*nets[:2], "--decoder", str(weight_files / "nan_dec.pth"), *nets[4:]]
    assert stylize("--content", content, "--style", style, "-o", tmp_path / "out", *args) == 2
    assert "NaN or infinite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--content-size", "-5", "0 (keep the size) or a positive"),
        ("--style-size", "-1", "0 (keep the size) or a positive"),
        ("--alpha", "nan", "must be in [0, 1]"),
    ],
)
def test_bad_numbers_are_usage_errors(nets, tmp_path, option, value, message, capsys):
    content, style = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1)
    assert stylize("--content", content, "--style", style, *nets, option, value) == 2
    assert message in capsys.readouterr().err


def test_huge_content_size_is_refused_up_front(nets, tmp_path, capsys):
    content, style = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1)
    assert (
        stylize("--content", content, "--style", style, "-o", tmp_path / "out", *nets, "--content-size", "100000") == 1
    )
    err = capsys.readouterr().err
    assert "GiB" in err and "--content-size" in err and "Traceback" not in err


def test_bad_inputs_in_a_batch_are_reported_and_the_rest_done(nets, tmp_path, capsys):
    contents = tmp_path / "c"
    contents.mkdir()
    write(contents / "good.png")
    write(contents / "tiny.png", h=5, w=6)
    bomb_png(contents / "bomb.png")
    loop = contents / "loop.png"
    os.symlink(loop, loop)  # a link to itself
    style = write(tmp_path / "s.png", seed=1)
    out = tmp_path / "out"
    code = stylize(
        "--content-dir",
        contents,
        "--content-size",
        "0",
        "--style",
        style,
        "-o",
        out,
        "--grid",
        *nets[:6],
        "--style-size",
        "32",
    )
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "good_stylized_s.png").exists() and (out / "contact_sheet.png").exists()
    assert "too large to load safely" in captured.err
    assert "at least 9 on each side" in captured.err
    assert "1 written" in captured.out and "Traceback" not in captured.err


def test_symlink_loop_given_as_content_is_one_line(nets, tmp_path, capsys):
    loop = tmp_path / "loop.jpg"
    os.symlink(loop, loop)
    style = write(tmp_path / "s.png", seed=1)
    assert stylize("--content", loop, "--style", style, "-o", tmp_path / "out", *nets) == 1
    assert "link loop" in capsys.readouterr().err


def test_rerun_with_every_result_present_still_writes_the_sheet(nets, tmp_path):
    content, style, out = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1), tmp_path / "out"
    assert stylize("--content", content, "--style", style, "-o", out, *nets) == 0
    assert stylize("--content", content, "--style", style, "-o", out, "--grid", *nets) == 0
    assert (out / "contact_sheet.png").exists()


def test_grid_with_a_corrupt_content_and_a_huge_cell(nets, tmp_path, capsys):
    contents = tmp_path / "c"
    contents.mkdir()
    write(contents / "ok.png")
    (contents / "broken.png").write_bytes(b"not a png")
    style = write(tmp_path / "s.png", seed=1)
    sheet = tmp_path / "sheet.png"
    assert (
        cli.main(
            [
                "grid",
                "--content-dir",
                str(contents),
                "--style",
                str(style),
                "--results",
                str(tmp_path),
                "-o",
                str(sheet),
            ]
        )
        == 0
    )
    assert Image.open(sheet).size == (2 * 260 + 4, 3 * 260 + 4)  # styles across, contents down
    code = cli.main(
        [
            "grid",
            "--content-dir",
            str(contents),
            "--style",
            str(style),
            "--results",
            str(tmp_path),
            "-o",
            str(tmp_path / "big.png"),
            "--cell",
            "100000",
        ]
    )
    assert code == 2 and "smaller cell size" in capsys.readouterr().err
    assert not (tmp_path / "big.png").exists()


def test_interrupt_says_so(nets, tmp_path, monkeypatch, capsys):
    from adain_cuda.cli import stylize as command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run", interrupted)
    content, style = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1)
    assert stylize("--content", content, "--style", style, *nets) == 130
    assert capsys.readouterr().err.strip() == "adain-cuda: interrupted"
