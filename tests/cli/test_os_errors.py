"""Operating-system errors at the edges are one line, and destinations are checked before the
work: an output where no file can be created (a folder that cannot exist, a file in its place),
a full disk while writing, out-of-range numbers, a device this build cannot use."""

import errno

import pytest
import torch

from adain_cuda import cli
from adain_cuda.images import imaging

from community_layout import write_weight_files


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    vgg, dec = write_weight_files(tmp_path_factory.mktemp("weights"))
    return ["--vgg", str(vgg), "--decoder", str(dec), "--no-download"]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    g = torch.Generator().manual_seed(0)
    for name in ("c.png", "s.png"):
        imaging.save_image(torch.rand(3, 24, 28, generator=g), folder / name)
    return folder / "c.png", folder / "s.png"


def one_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("adain-cuda:")]
    assert len(err) == 1, err
    return err[0]


# Destinations no file can be created in, as the test machine allows (root ignores permissions).
def unwritable(tmp_path, kind):
    if kind == "a file in the way":
        (tmp_path / "blocker").write_text("x")
        return tmp_path / "blocker" / "out"
    if kind == "a folder that cannot exist":
        return "/proc/adain-cuda-test/out"
    return "/sys/adain-cuda-test"  # read-only to everyone


DESTINATIONS = ["a file in the way", "a folder that cannot exist", "a read-only file system"]


@pytest.mark.parametrize("kind", DESTINATIONS)
@pytest.mark.parametrize("command", ["stylize", "recolor"])
def test_an_unwritable_output_folder_is_found_before_any_work(
    kind, command, nets, pictures, tmp_path, monkeypatch, capsys
):
    from adain_cuda.stylize import Stylizer

    calls = []
    monkeypatch.setattr(Stylizer, "stylize", lambda *a, **k: calls.append(1))
    c, s = pictures
    args = [command, "--content", str(c), "--style", str(s), "-o", str(unwritable(tmp_path, kind))]
    assert cli.main(args + (nets + ["--device", "cpu"] if command == "stylize" else [])) == 2
    assert "cannot write to the output folder" in one_line(capsys) or "is a file" in capsys.readouterr().err
    assert calls == []


@pytest.mark.parametrize("kind", DESTINATIONS)
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_to_an_unwritable_destination_is_one_line_before_tracing(kind, fmt, nets, tmp_path, monkeypatch, capsys):
    from adain_cuda import export

    monkeypatch.setattr(export, "stylizer_module", lambda *a, **k: pytest.fail("traced before the check"))
    dest = f"{unwritable(tmp_path, kind)}/model.{fmt}"
    assert cli.main(["export", "-o", dest, *nets]) == 2
    assert "cannot write" in one_line(capsys)


@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("PytorchStreamWriter failed writing file data/0")],
)
def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(error, nets, tmp_path, monkeypatch, capsys):
    def full(program, path, *a, **k):
        raise error

    monkeypatch.setattr(torch.export, "save", full)
    dest = tmp_path / "model.pt2"
    assert cli.main(["export", "-o", str(dest), "--format", "program", "--fixed-size", "32", "32", *nets]) == 2
    assert "could not write" in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (["--output", "FILE"], "is a file"),
        (["--repeats", "0"], "--repeats"),
        (["--repeats", "-3"], "--repeats"),
        (["--device", "tpu"], "--device"),
        (["--device", "cuda:99"], "--device"),
    ],
)
def test_demo_options_are_one_line(args, words, tmp_path, capsys):
    if args[0] == "--output":
        (tmp_path / "FILE").write_text("x")
        args = ["--output", str(tmp_path / "FILE")]
    assert cli.main(["demo", *args]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_demo_on_cuda_without_cuda_is_one_line(tmp_path, capsys):
    assert cli.main(["demo", "--device", "cuda", "--output", str(tmp_path / "d")]) == 2
    assert "--device" in one_line(capsys)
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize("seed", ["-1", str(2**63), str(2**70), "1.5", "x"])
def test_train_seed_out_of_range_is_a_usage_error(seed, tmp_path, capsys):
    assert cli.main(["train", "--content-dir", str(tmp_path), "--style-dir", str(tmp_path), "--seed", seed]) == 2
    assert "--seed" in capsys.readouterr().err
