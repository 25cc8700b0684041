"""Every command that writes many files plans its names up front and never loses a file: names
that would collide (by suffixes, by case, by numbering), names that would be an input, names past
the file system's limit, existing files without --overwrite, and a second run writing into the
same folder at the same time. Checked for each command that writes a batch."""

import os

import pytest
import torch

from adain_cuda import cli
from adain_cuda._files import FileExists, atomic_path
from adain_cuda.cli.batch import input_names, plan
from adain_cuda.images import imaging

from community_layout import write_weight_files


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    vgg, dec = write_weight_files(tmp_path_factory.mktemp("weights"))
    return ["--vgg", str(vgg), "--decoder", str(dec), "--device", "cpu", "--no-download"]


def write(path, seed=0, h=24, w=28):
    g = torch.Generator().manual_seed(seed)
    imaging.save_image(torch.rand(3, h, w, generator=g), path)
    return path


def run(command, contents, styles, out, nets, *extra):
    args = [command, "--content", *map(str, contents), "--style", *map(str, styles), "-o", str(out), *extra]
    if command == "stylize":
        args += [*nets, "--content-size", "0", "--style-size", "0"]
    return cli.main(args)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# Sets of input names whose naive output names collide.
COLLIDING = {
    "suffixes": (["x.png", "x_stylized_y.png"], ["y_stylized_z.png", "z.png"]),
    "case": (["a.png", "a.PNG", "a_png_1.jpg"], ["s.png"]),
    "numbering": (["a.png", "a.jpg", "a_png.bmp", "a_png_2.png"], ["s.png"]),
    "recolored suffixes": (["x.png", "x_recolored_y.png"], ["y_recolored_z.png", "z.png"]),
    "same name, two folders": (["one/p.png", "two/p.png"], ["one/s.png", "two/s.png"]),
}


@pytest.mark.parametrize("case", sorted(COLLIDING))
@pytest.mark.parametrize("command", ["stylize", "recolor"])
def test_every_pair_gets_its_own_file(case, command, nets, tmp_path):
    content_names, style_names = COLLIDING[case]
    contents, styles = [], []
    for i, name in enumerate(content_names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        contents.append(write(tmp_path / name, seed=i))
    for j, name in enumerate(style_names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        styles.append(write(tmp_path / name, seed=10 + j))
    out = tmp_path / "out"
    assert run(command, contents, styles, out, nets) == 0
    written = [p.name for p in out.iterdir()]
    assert len(written) == len(contents) * len(styles)
    assert len({n.casefold() for n in written}) == len(written)  # distinct on case-insensitive systems too


@pytest.mark.parametrize("command", ["stylize", "recolor"])
def test_outputs_named_like_inputs_get_other_names_and_inputs_stay(command, nets, tmp_path):
    """The output folder is the input folder, and the first planned name is an input's."""
    verb = "stylized" if command == "stylize" else "recolored"
    c, s = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1)
    squatter = write(tmp_path / f"c_{verb}_s.png", seed=2)
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        assert run(command, [c, squatter], [s], tmp_path, nets, *extra) == 0
        assert all((tmp_path / name).read_bytes() == data for name, data in before.items())
    assert (tmp_path / f"c_{verb}_s_2.png").exists()
    assert (tmp_path / f"c_{verb}_s_{verb}_s.png").exists()


@pytest.mark.parametrize("length", [120, 200, 240, 251])
@pytest.mark.parametrize("command", ["stylize", "recolor"])
def test_long_names_fit_and_stay_distinct(length, command, nets, tmp_path):
    stem = "p" * (length - 4)  # a legal name: length bytes with ".png"
    contents = [write(tmp_path / f"{stem}.png"), write(tmp_path / f"{stem[:-1]}q.png", seed=1)]
    out = tmp_path / "out"
    assert run(command, contents, [write(tmp_path / "s.png", seed=2)], out, nets) == 0
    names = [p.name for p in out.iterdir()]
    assert len(names) == 2 and len(set(names)) == 2
    assert all(len(os.fsencode(n)) <= 255 for n in names)


def test_plan_is_deterministic_and_collision_free():
    stems = ["a", "A", "a_2", "a", "b" * 300, "b" * 300 + "c"]
    first = plan(__import__("pathlib").Path("/tmp/none"), stems, ".png")
    assert first == plan(__import__("pathlib").Path("/tmp/none"), stems, ".png")
    assert len({p.name.casefold() for p in first}) == len(stems)
    assert input_names([__import__("pathlib").Path(n) for n in ["x.png", "X.PNG", "y.jpg"]]) == [
        "x_png",
        "X_png_2",
        "y",
    ]


@pytest.mark.parametrize("command", ["stylize", "recolor"])
def test_a_result_written_meanwhile_by_another_run_is_kept(command, nets, tmp_path, monkeypatch, capsys):
    """Check-then-write: another run creates the file between the check and the write."""
    c, s, out = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1), tmp_path / "out"
    theirs = write(tmp_path / "theirs.png", seed=99).read_bytes()
    real_save = imaging.save_image

    def racing_save(image, path, **kwargs):
        path.write_bytes(theirs)  # the other run's result lands first
        return real_save(image, path, **kwargs)

    monkeypatch.setattr(imaging, "save_image", racing_save)
    assert run(command, [c], [s], out, nets) == 0
    (result,) = list(out.iterdir())
    assert "written meanwhile by another run" in capsys.readouterr().out
    assert result.read_bytes() == theirs


def test_exclusive_creation_refuses_an_existing_name(tmp_path):
    target = tmp_path / "r.png"
    target.write_bytes(b"theirs")
    with pytest.raises(FileExists):
        with atomic_path(target, overwrite=False) as tmp:
            tmp.write_bytes(b"ours")
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["r.png"]


def test_grid_never_replaces_a_file_without_overwrite_nor_an_input(nets, tmp_path, capsys):
    c, s, out = write(tmp_path / "c.png"), write(tmp_path / "s.png", seed=1), tmp_path / "out"
    assert run("stylize", [c], [s], out, nets) == 0
    sheet = write(tmp_path / "sheet.png", seed=5)
    before = sheet.read_bytes()
    grid = ["grid", "--content", str(c), "--style", str(s), "--results", str(out)]
    assert cli.main([*grid, "-o", str(sheet)]) == 2
    assert "exists" in capsys.readouterr().err and sheet.read_bytes() == before
    assert cli.main([*grid, "-o", str(sheet), "--overwrite"]) == 0
    assert sheet.read_bytes() != before
    for victim in (c, out / "c_stylized_s.png"):
        kept = victim.read_bytes()
        assert cli.main([*grid, "-o", str(victim), "--overwrite"]) == 2
        assert "one of the inputs" in capsys.readouterr().err and victim.read_bytes() == kept


def test_stylize_grid_never_replaces_an_input_sheet(nets, tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    c, s = write(folder / "c.png"), write(folder / "s.png", seed=1)
    sheet_input = write(folder / "contact_sheet.png", seed=3)
    before = sheet_input.read_bytes()
    assert run("stylize", [c, sheet_input], [s], folder, nets, "--grid", "--overwrite") == 0
    assert sheet_input.read_bytes() == before
    assert (folder / "contact_sheet_2.png").exists()
