"""The source distribution holds everything a wheel is built from: build one from it, unpack the
wheel and import the package from there (CPU kernels only, to keep it short)."""

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run(*args, cwd, env=None):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree")
def test_sdist_builds_a_working_wheel(tmp_path):
    pytest.importorskip("build")
    env = {**os.environ, "FORCE_CUDA": "0", "MAX_JOBS": os.environ.get("MAX_JOBS", "2")}
    env.pop("TORCH_CUDA_ARCH_LIST", None)
    run(
        sys.executable,
        "-m",
        "build",
        "--sdist",
        "--no-isolation",
        "--outdir",
        str(tmp_path / "dist"),
        cwd=ROOT,
        env=env,
    )
    sdist = next((tmp_path / "dist").glob("adain_cuda-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "src", filter="data")
    for needed in (
        "csrc/plane.h",
        "csrc/op_setup.h",
        "csrc/cuda/device_blocks.cuh",
        "csrc/cuda/launch_config.cuh",
        "csrc/cuda/adain_kernels.cu",
        "csrc/cpu/plane_kernels.h",
        "LICENSE",
        "adain_cuda/py.typed",
    ):
        assert any(n.endswith(needed) for n in names), f"{needed} missing from the sdist"
    source = next((tmp_path / "src").iterdir())
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-build-isolation",
        "--no-deps",
        "-w",
        str(tmp_path / "wheel"),
        str(source),
        cwd=tmp_path,
        env=env,
    )
    wheel = next((tmp_path / "wheel").glob("adain_cuda-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "installed")
    probe = (
        "import adain_cuda, torch; from adain_cuda.ops import _library; "
        "assert _library.loaded(), _library.LOAD_ERROR; "
        "x = torch.randn(2, 3, 4, 4); print(adain_cuda.adain(x, x).shape, adain_cuda.__version__)"
    )
    out = run(sys.executable, "-c", probe, cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path / "installed")})
    assert "torch.Size([2, 3, 4, 4])" in out.stdout
