"""The demo leaves pictures and an index page, online or offline; colour transfer matches the
style's colour statistics."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from adain_cuda import cli
from adain_cuda.images import imaging
from adain_cuda.stylize.recolor import lab_to_rgb, recolor, rgb_to_lab


def test_recolor_gives_the_style_colour_statistics():
    g = torch.Generator().manual_seed(0)
    content = torch.rand(3, 40, 50, generator=g) * 0.5 + 0.2
    style = (
        torch.rand(3, 30, 30, generator=g) * torch.tensor([0.3, 0.6, 0.2])[:, None, None]
        + torch.tensor([0.5, 0.1, 0.3])[:, None, None]
    )
    out = recolor(content, style, method="lab")
    lab_out, lab_style = rgb_to_lab(out).flatten(1), rgb_to_lab(style).flatten(1)
    torch.testing.assert_close(lab_out.mean(1), lab_style.mean(1), atol=2e-3, rtol=0)
    torch.testing.assert_close(lab_out.std(1), lab_style.std(1), atol=3e-3, rtol=0.02)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(content)).float(), content, atol=1e-5, rtol=0)
    cov = recolor(content, style, method="covariance")
    torch.testing.assert_close(cov.flatten(1).mean(1), style.flatten(1).mean(1), atol=2e-3, rtol=0)
    torch.testing.assert_close(recolor(content, style, strength=0.0), content, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="unknown recolor `method`"):
        recolor(content, style, method="hsv")


def test_recolor_command(tmp_path, capsys):
    imaging.save_image(torch.rand(3, 20, 24), tmp_path / "c.png")
    imaging.save_image(torch.rand(3, 16, 16) * 0.3, tmp_path / "s.png")
    assert (
        cli.main(
            [
                "recolor",
                "--content",
                str(tmp_path / "c.png"),
                "--style",
                str(tmp_path / "s.png"),
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "out" / "c_recolored_s.png").size == (24, 20)


@pytest.mark.slow
def test_demo_offline_leaves_a_labelled_colour_transfer_and_an_index(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(tmp_path / "empty_cache"))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--repeats", "1", "--output", str(out), "--no-download", "--device", "cpu"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "colour_transfer.png", "op_speed.png"} <= names and "stylization.png" not in names
    page = (out / "index.html").read_text()
    assert "colour_transfer.png" in page and "not available" in page
    sheet = Image.open(out / "colour_transfer.png")
    assert sheet.width > 600 and sheet.height > 600


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """A terminated command exits 130 with a message, like Ctrl-C (so its clean-up runs)."""
    script = (
        "import sys, time; sys.argv = ['adain-cuda', 'info']\n"
        "from adain_cuda import cli\n"
        "from adain_cuda.cli import info\n"
        "info.run = lambda args: time.sleep(30) or 0\n"
        "sys.exit(cli.main(['info']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "terminated" in err
