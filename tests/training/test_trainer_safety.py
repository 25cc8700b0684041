"""What a user's folders, checkpoints and options can do to training: nothing runs code, nothing
is overwritten without asking, every bad option is one line before any work."""

import pytest
import torch
from PIL import Image

from adain_cuda import cli
from adain_cuda.images import imaging
from adain_cuda.models import weights
from adain_cuda.training import Trainer
from adain_cuda.training.checkpoints import CheckpointError

from community_layout import VGG_CONVS, random_state
from helpers import train_config

pytestmark = pytest.mark.slow  # deselect with -m "not slow"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    g = torch.Generator().manual_seed(0)
    for kind in ("content", "style"):
        (root / kind).mkdir()
        for i in range(3):
            imaging.save_image(torch.rand(3, 40, 44 + 4 * i, generator=g), root / kind / f"{i}.png")
    torch.save(random_state(VGG_CONVS, 5), root / "vgg.pth")
    return root


def config(data, out, **kw):
    return train_config(data, data / "vgg.pth", out, **kw)


def train_cli(data, out, *extra):
    return cli.main(
        [
            "train",
            "--content-dir",
            str(data / "content"),
            "--style-dir",
            str(data / "style"),
            "--vgg",
            str(data / "vgg.pth"),
            "-o",
            str(out),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--image-size",
            "32",
            "--crop-size",
            "32",
            "--batch-size",
            "2",
            "--max-iter",
            "2",
            "--sample-every",
            "0",
            "--no-tensorboard",
            *map(str, extra),
        ]
    )


class Payload:
    """Unpickling this creates a file: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_crafted_checkpoint_cannot_run_code(data, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"decoder": Payload(marker), "iteration": 1}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable adain_cuda checkpoint"):
        Trainer(config(data, tmp_path / "run", resume=str(tmp_path / "evil.pt")))
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable"),
        (b"PK\x03\x04 truncated", "not a readable"),
        (None, "not an adain_cuda training checkpoint"),
    ],
)
def test_broken_checkpoints_are_one_line(data, tmp_path, content, message, capsys):
    path = tmp_path / "checkpoint.pt"
    if content is None:
        torch.save({"1.weight": torch.zeros(2)}, path)  # a state dict, not a checkpoint
    else:
        path.write_bytes(content)
    assert train_cli(data, tmp_path / "run", "--resume", path) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_existing_run_is_not_overwritten_without_asking(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli(data, out) == 0
    decoder = (out / "decoder.pth").read_bytes()
    log = (out / "log.csv").read_text()
    assert train_cli(data, out) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert (out / "decoder.pth").read_bytes() == decoder and (out / "log.csv").read_text() == log
    assert train_cli(data, out, "--overwrite") == 0
    assert len((out / "log.csv").read_text().splitlines()) == 2  # a fresh log: header and the last row
    assert train_cli(data, out, "--resume", "--max-iter", "3") == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--save-every", "0"], "--save-every must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--crop-size", "64"], "--crop-size 64 is larger than --image-size 32"),
        (["--layer-weights", "1,2"], "--layer-weights needs 4 weights"),
        (["--lr", "nan"], "--lr must be a finite number"),
    ],
)
def test_bad_options_are_one_line(data, tmp_path, extra, message, capsys):
    assert train_cli(data, tmp_path / "run", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_folder_of_only_bad_images_is_one_line(data, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_text("not an image")
    Image.new("RGB", (4, 4)).save(bad / "tiny.png")
    code = cli.main(
        [
            "train",
            "--content-dir",
            str(bad),
            "--style-dir",
            str(data / "style"),
            "--vgg",
            str(data / "vgg.pth"),
            "-o",
            str(tmp_path / "run"),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--max-iter",
            "1",
            "--batch-size",
            "1",
            "--image-size",
            "32",
            "--crop-size",
            "32",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "none of the 2 images could be used" in err and "Traceback" not in err


def test_without_vgg_the_cached_weights_are_used_not_a_random_encoder(data, tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="adain_cuda")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "vgg_normalised.pth").write_bytes((data / "vgg.pth").read_bytes())
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(cache))
    sha = weights.sha256_of(data / "vgg.pth")
    size = (data / "vgg.pth").stat().st_size
    from dataclasses import replace

    monkeypatch.setitem(weights.REGISTRY, "vgg", replace(weights.REGISTRY["vgg"], sha256=sha, size=size))
    trainer = Trainer(config(data, tmp_path / "run", vgg=None))
    expected = random_state(VGG_CONVS, 5)
    assert torch.equal(trainer.encoder.net[2].weight, expected["2.weight"])
    assert not any("RANDOM" in r.getMessage() for r in caplog.records)


def test_learning_rate_schedule_and_a_changed_lr_on_resume(data, tmp_path):
    trainer = Trainer(config(data, tmp_path / "run", lr=1e-3, lr_decay=0.5, max_iter=3))
    trainer.train()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / (1 + 0.5 * 3))
    resumed = Trainer(config(data, tmp_path / "run", lr=4e-3, lr_decay=0.5, max_iter=4, resume="auto"))
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3 / (1 + 0.5 * 3))
    resumed.train()
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3 / (1 + 0.5 * 4))


def test_a_full_disk_while_saving_leaves_the_previous_checkpoint(data, tmp_path, monkeypatch):
    trainer = Trainer(config(data, tmp_path / "run", max_iter=2))
    trainer.train()
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"PK half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        trainer.save_checkpoint()
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


# Folders that hold something of a run but no checkpoint: resuming there starts nothing and
# touches nothing.
RUN_LEFTOVERS = {
    "decoder only": ["decoder.pth"],
    "log only": ["log.csv"],
    "decoder snapshots": ["decoder_iter_5.pth"],
    "empty folder": [],
}


@pytest.mark.parametrize("leftover", sorted(RUN_LEFTOVERS))
@pytest.mark.parametrize("how", ["cli", "api"])
def test_resume_requires_its_checkpoint(data, tmp_path, leftover, how, capsys):
    out = tmp_path / "run"
    out.mkdir()
    before = {}
    for name in RUN_LEFTOVERS[leftover]:
        (out / name).write_bytes(b"precious " + name.encode())
        before[name] = (out / name).read_bytes()
    if how == "cli":
        assert train_cli(data, out, "--resume") == 2
        assert "no checkpoint" in capsys.readouterr().err
    else:
        with pytest.raises(CheckpointError, match="no checkpoint"):
            Trainer(config(data, out, resume="auto"))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "run.lock"} == before


@pytest.mark.parametrize("lr", [1e9, 1e30])
def test_a_diverging_run_never_saves_over_the_last_good_checkpoint(data, tmp_path, lr, capsys):
    out = tmp_path / "run"
    assert train_cli(data, out, "--max-iter", "2", "--save-every", "2") == 0
    good, good_decoder = (out / "checkpoint.pt").read_bytes(), (out / "decoder.pth").read_bytes()
    code = train_cli(data, out, "--resume", "--max-iter", "8", "--save-every", "2", "--lr", lr)
    assert code == 2
    err = capsys.readouterr().err
    assert "diverged" in err and "iteration" in err and "--lr" in err
    assert (out / "checkpoint.pt").read_bytes() == good
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["decoder"].values())
    assert (out / "decoder.pth").read_bytes() == good_decoder


def test_two_trainers_cannot_share_a_run_folder(data, tmp_path, capsys):
    from adain_cuda.training.checkpoints import RunFolder, RunFolderBusy

    out = tmp_path / "run"
    with RunFolder(out):  # another trainer owns it
        with pytest.raises(RunFolderBusy, match="in use by another trainer"):
            Trainer(config(data, out))
        assert train_cli(data, out, "--overwrite") == 2
        assert "in use by another trainer" in capsys.readouterr().err
    assert not (out / "log.csv").exists()
    assert train_cli(data, out) == 0  # free again once the owner is gone


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("PytorchStreamWriter failed")])
def test_a_failed_checkpoint_write_is_one_line(data, tmp_path, monkeypatch, error, capsys):
    from adain_cuda.training import checkpoints

    def failing(obj, path, *args, **kwargs):
        raise error

    monkeypatch.setattr(checkpoints.torch, "save", failing)
    assert train_cli(data, tmp_path / "run") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("adain-cuda:")]
    assert len(err) == 1 and "could not write" in err[0] and "checkpoint.pt" in err[0]
    assert not any(p.name.startswith(".adain-tmp") for p in (tmp_path / "run").iterdir())


def test_a_worker_error_is_its_own_last_line():
    from adain_cuda.cli.report import describe

    text = (
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise ValueError("bad crop")\nValueError: bad crop\n'
    )
    assert describe(RuntimeError(text)) == "in a data loading worker: ValueError: bad crop"
