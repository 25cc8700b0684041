"""stylize-dataset: the tree kept, choices a pure function of (seed, path, version), the same
bytes however the work is split (workers, resumption, torchrun processes), failures listed and
the run carried on, out of memory retried, nothing written into the content tree."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adain_cuda import cli
from adain_cuda.datasets import VERSION_SUFFIX, pick_style, plan_dataset, stylize_dataset
from adain_cuda.images import imaging
from adain_cuda.stylize import build_style_bank

from community_layout import write_weight_files

pytestmark = pytest.mark.slow

# relative path -> (height, width): class folders, a nested one, equal and distinct sizes, an
# upper-case extension, a file at the top
CONTENTS = {
    "cats/a.jpg": (30, 40),
    "cats/b.JPG": (30, 40),
    "cats/c.png": (30, 40),
    "dogs/d.png": (32, 32),
    "dogs/sub/e.jpg": (40, 30),
    "f.png": (30, 40),
    "dogs/g.bmp": (32, 32),
}
OTHERS = {"labels.txt": "cats 0\ndogs 1\n", "dogs/annotations.json": "{}"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A content tree, a style folder (one unreadable style) and its bank, weight files."""
    root = tmp_path_factory.mktemp("dataset")
    g = torch.Generator().manual_seed(0)
    for name, (h, w) in CONTENTS.items():
        imaging.save_image(torch.rand(3, h, w, generator=g), root / "content" / name)
    for name, text in OTHERS.items():
        (root / "content" / name).write_text(text)
    for i in range(4):
        imaging.save_image(torch.rand(3, 36, 36, generator=g), root / "styles" / f"s{i}.png")
    (root / "styles" / "broken.png").write_text("not an image")
    vgg, dec = write_weight_files(root)
    return root


@pytest.fixture(scope="module")
def bank(tree, stylizer):
    return build_style_bank(stylizer, tree / "styles", style_size=32, progress=False)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run(stylizer, tree, bank, out, **options):
    return stylize_dataset(stylizer, tree / "content", bank, out, progress=False, **{"workers": 0, **options})


def test_the_tree_is_kept_with_its_names_and_other_files(stylizer, tree, bank, tmp_path):
    before = files(tree / "content")
    report = run(stylizer, tree, bank, tmp_path / "out")
    out = tmp_path / "out"
    assert report.written == len(CONTENTS) and not report.failed
    for name, (h, w) in CONTENTS.items():
        img = imaging.load_image(out / name)
        assert img.shape == (3, h, w)  # the size and the exact name (ImageFolder keeps working)
    for name, text in OTHERS.items():
        assert (out / name).read_text() == text
    manifest = rows(out / "manifest.csv")
    assert [r["content"] for r in manifest] == sorted(CONTENTS)
    assert all(r["output"] == r["content"] and r["version"] == "0" and r["alpha"] == "1.0" for r in manifest)
    assert {r["style"] for r in manifest} <= set(bank.paths)
    assert rows(out / "failed.csv") == []
    assert not (out / ".adain-dataset").exists()
    assert files(tree / "content") == before  # nothing written into the content tree


def test_versions_alpha_range_and_choices_from_seed_path_and_version(stylizer, tree, bank, tmp_path):
    out = tmp_path / "out"
    run(stylizer, tree, bank, out, num_styles=3, alpha=(0.25, 0.75), seed=11, save_ext="png")
    manifest = rows(out / "manifest.csv")
    assert len(manifest) == 3 * len(CONTENTS)
    for r in manifest:
        version = int(r["version"])
        stem = Path(r["content"]).with_suffix("").as_posix()
        assert r["output"] == stem + VERSION_SUFFIX.format(version) + ".png"
        style, alpha = pick_style(11, r["content"], version, len(bank), (0.25, 0.75))
        assert r["style"] == bank.paths[style] and float(r["alpha"]) == alpha and 0.25 <= alpha <= 0.75
        assert (out / r["output"]).is_file()
    assert len({r["style"] for r in manifest}) > 1 and len({r["alpha"] for r in manifest}) > 1


def test_choices_do_not_depend_on_the_other_files(tree, tmp_path):
    """A file's style depends on nothing but (seed, its path, version): not on what else is there."""
    content = tmp_path / "content"
    shutil.copytree(tree / "content", content)
    whole = plan_dataset(content, tmp_path / "o", styles=4, num_styles=2, seed=5)
    for name in ["cats/a.jpg", "dogs/d.png"]:
        (content / name).unlink()
    imaging.save_image(torch.rand(3, 20, 20), content / "aa" / "new.png")
    part = plan_dataset(content, tmp_path / "o", styles=4, num_styles=2, seed=5)
    choices = {(j.content, j.version): (j.style, j.alpha) for j in whole.jobs}
    for job in part.jobs:
        if (job.content, job.version) in choices:
            assert choices[(job.content, job.version)] == (job.style, job.alpha)


def test_a_link_loop_in_the_content_tree_is_walked_once(tree, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(tree / "content", content)
    (content / "dogs" / "loop").symlink_to(content, target_is_directory=True)  # a link back up
    (content / "linked").symlink_to(content / "cats", target_is_directory=True)  # a second name
    plan = plan_dataset(content, tmp_path / "out", styles=4)
    names = [j.content for j in plan.jobs]
    assert len(names) == len(set(names)) == len(CONTENTS)  # every real folder once
    assert not any(n.startswith("dogs/loop/") for n in names)


@pytest.mark.parametrize("how", ["resume", "workers", "batch_of_one_chunking"])
def test_the_same_bytes_however_the_work_is_done(stylizer, tree, bank, tmp_path, how):
    reference = tmp_path / "reference"
    run(stylizer, tree, bank, reference, num_styles=2, alpha=(0.5, 1.0), batch_size=4)
    out = tmp_path / "out"
    if how == "resume":  # a killed run: some outputs missing, no manifest yet
        shutil.copytree(reference, out)
        for name in ["cats/b_v1.JPG", "f_v0.png", "manifest.csv", "failed.csv"]:
            (out / name).unlink()
        report = run(stylizer, tree, bank, out, num_styles=2, alpha=(0.5, 1.0), batch_size=4)
        assert (report.written, report.done_before) == (2, 2 * len(CONTENTS) - 2)
    elif how == "workers":
        run(stylizer, tree, bank, out, num_styles=2, alpha=(0.5, 1.0), batch_size=4, workers=2)
    else:  # a resumed chunk is computed whole: every image keeps its company
        shutil.copytree(reference, out)
        (out / "cats/c_v0.png").unlink()
        run(stylizer, tree, bank, out, num_styles=2, alpha=(0.5, 1.0), batch_size=4)
    assert files(out) == files(reference)


def test_overwrite_redoes_and_without_it_nothing_is_replaced(stylizer, tree, bank, tmp_path):
    out = tmp_path / "out"
    run(stylizer, tree, bank, out)
    (out / "f.png").write_bytes(b"mine")
    report = run(stylizer, tree, bank, out)
    assert report.written == 0 and (out / "f.png").read_bytes() == b"mine"
    (out / "labels.txt").write_text("edited")
    report = run(stylizer, tree, bank, out, overwrite=True)
    assert report.written == len(CONTENTS) and (out / "f.png").read_bytes() != b"mine"
    assert (out / "labels.txt").read_text() == OTHERS["labels.txt"]


def test_unreadable_and_too_small_images_are_listed_and_the_run_goes_on(stylizer, tree, bank, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(tree / "content", content)
    (content / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    imaging.save_image(torch.rand(3, 5, 7), content / "dogs" / "tiny.png")
    report = stylize_dataset(stylizer, content, bank, tmp_path / "out", progress=False, workers=0)
    assert report.written == len(CONTENTS)
    failed = {r["content"]: r["reason"] for r in rows(tmp_path / "out" / "failed.csv")}
    assert set(failed) == {"cats/broken.jpg", "dogs/tiny.png"}
    assert "not a readable image" in failed["cats/broken.jpg"] and "too small" in failed["dogs/tiny.png"]
    assert not (tmp_path / "out" / "cats" / "broken.jpg").exists()


def test_out_of_memory_retries_alone_then_at_the_fallback_size(stylizer, tree, bank, tmp_path, monkeypatch):
    """A batch that runs out of memory is split; an image that does alone fails unless a fallback
    size is given, then it is made at that size."""
    real = stylizer.transfer_each
    calls = []

    def limited(content, *args, **kwargs):
        calls.append(tuple(content.shape))
        if content.shape[0] > 1 or content.shape[-1] * content.shape[-2] >= 1024:
            raise torch.OutOfMemoryError("out of memory (simulated)")
        return real(content, *args, **kwargs)

    monkeypatch.setattr(stylizer, "transfer_each", limited)
    report = run(stylizer, tree, bank, tmp_path / "a", batch_size=8)
    assert len(report.failed) == len(CONTENTS) and all("--fallback-size" in r for _, _, r in report.failed)
    assert any(shape[0] > 1 for shape in calls) and any(shape[0] == 1 for shape in calls)
    report = run(stylizer, tree, bank, tmp_path / "b", batch_size=8, fallback_size=24)
    assert report.written == len(CONTENTS) and not report.failed
    assert min(imaging.load_image(tmp_path / "b" / "f.png").shape[-2:]) == 24


@pytest.mark.parametrize(
    "case, message",
    [
        ("out_inside_content", "overlap"),
        ("content_inside_out", "overlap"),
        ("same", "overlap"),
        ("two_inputs_one_name", "would both be written as cats/a.png"),
        ("reserved_name", "where the run writes its own manifest.csv"),
        ("unknown_extension", "`extensions`"),
        ("no_images", "no images found"),
        ("bad_quality", "`quality`"),
    ],
)
def test_refusals_name_the_problem_before_any_write(stylizer, tree, bank, tmp_path, case, message):
    content = tmp_path / "content"
    shutil.copytree(tree / "content", content)
    out, options = tmp_path / "out", {}
    if case == "out_inside_content":
        out = content / "stylized"
    elif case == "content_inside_out":
        out = tmp_path
    elif case == "same":
        out = content
    elif case == "two_inputs_one_name":
        imaging.save_image(torch.rand(3, 20, 20), content / "cats" / "a.png")
        options = {"save_ext": "png"}
    elif case == "reserved_name":
        (content / "manifest.csv").write_text("mine")
    elif case == "unknown_extension":
        options = {"extensions": "jpg,doc"}
    elif case == "no_images":
        options = {"extensions": "webp"}
    else:
        options = {"quality": 0}
    before = files(tmp_path)
    with pytest.raises(ValueError, match=message):
        stylize_dataset(stylizer, content, bank, out, progress=False, workers=0, **options)
    assert files(tmp_path) == before


def cli_args(tree, out, *extra):
    return [
        "stylize-dataset",
        str(tree / "content"),
        str(tree / "styles"),
        "-o",
        str(out),
        "--vgg",
        str(tree / "vgg.pth"),
        "--decoder",
        str(tree / "dec.pth"),
        "--device",
        "cpu",
        "--style-size",
        "32",
        "--num-styles",
        "2",
        "--alpha",
        "0.5:1",
        "--batch-size",
        "3",
        *extra,
    ]


@pytest.mark.parametrize(
    "flag, value", [("--alpha", "2"), ("--alpha", "0.8:0.2"), ("--quality", "0"), ("--seed", "-1")]
)
def test_cli_refuses_bad_options(tree, tmp_path, flag, value, capsys):
    assert cli.main([*cli_args(tree, tmp_path / "out"), flag, value]) == 2
    assert flag in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_reports_skipped_styles_and_exits_1_on_failures(tree, tmp_path, capsys):
    content = tmp_path / "content"
    shutil.copytree(tree / "content", content)
    (content / "x.jpg").write_text("not an image")
    args = cli_args(tree, tmp_path / "out")
    args[1] = str(content)
    assert cli.main(args) == 1
    text = capsys.readouterr().out
    assert "failed: x.jpg" in text and "1 unusable style images skipped" in text


def _env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("WORLD_SIZE", None)
    return env


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="needs torchrun",
)
def test_two_torchrun_processes_give_the_same_bytes_as_one(tree, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli.main(cli_args(tree, one)) == 0
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc-per-node", "2", "-m", "adain_cuda", *cli_args(tree, two)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert files(two) == files(one)


def test_a_killed_run_is_finished_by_the_same_command_with_the_same_bytes(tree, tmp_path):
    """SIGKILL mid-run (no chance to clean up), plus a half-written temporary file such a kill
    can leave: the rerun finishes the outputs, removes the leftover, and matches an unbroken run."""
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert cli.main(cli_args(tree, reference, "--batch-size", "1")) == 0
    cmd = [sys.executable, "-m", "adain_cuda", *cli_args(tree, out, "--batch-size", "1", "--workers", "0")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(out.rglob("*_v0.*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=60)
    (out / "cats").mkdir(parents=True, exist_ok=True)
    (out / "cats" / ".adain-tmp-killed").write_bytes(b"half a JPEG")
    assert cli.main(cli_args(tree, out, "--batch-size", "1")) == 0
    assert files(out) == files(reference)


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_with_the_same_bytes(tree, tmp_path):
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert cli.main(cli_args(tree, reference, "--batch-size", "1")) == 0
    cmd = [sys.executable, "-m", "adain_cuda", *cli_args(tree, out, "--batch-size", "1", "--workers", "0")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(out.rglob("*_v0.*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, stderr[-2000:]
    assert "run the same command again" in stdout and "Traceback" not in stderr
    assert not [p for p in out.rglob("*") if p.name.startswith(".adain-tmp-")]
    assert cli.main(cli_args(tree, out, "--batch-size", "1")) == 0
    assert files(out) == files(reference)


@pytest.mark.parametrize("shape", [(1, 30, 40), (2, 17, 23), (1, 64, 48), (3, 9, 9)], ids=str)
def test_a_stylization_does_not_depend_on_the_thread_count(stylizer, bank, shape):
    """One process with several threads and several processes with one (torchrun's default)
    must compute the same bits."""
    n, h, w = shape
    content = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    rows = torch.arange(n) % len(bank)
    alpha = torch.linspace(0.3, 1.0, n)
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2):
            torch.set_num_threads(count)
            results.append(stylizer.transfer_each(content, bank.mean[rows], bank.std[rows], alpha))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])
