"""The source distribution holds everything a wheel is built from.

The default check is cheap: the sdist's build inputs (the C++/CUDA sources and headers, setup.py,
pyproject.toml, the package) are byte for byte the files this checkout tracks, which the test
suite's own build compiles; a wheel built from the sdist without the extension installs and
imports. ``ADAIN_CUDA_SDIST_FULL_BUILD=1`` also compiles the extension from the unpacked sdist
and runs the op from the wheel (several minutes on two cores: a release check, not every run)."""

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
FULL_BUILD = os.environ.get("ADAIN_CUDA_SDIST_FULL_BUILD") == "1"


def run(*args, cwd, env=None):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tracked_build_inputs() -> list[str]:
    """What git tracks of the files a wheel is built from."""
    out = subprocess.run(
        ["git", "ls-files", "csrc", "adain_cuda", "setup.py", "pyproject.toml", "LICENSE"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("sdist")
    env = {**os.environ, "FORCE_CUDA": "0", "MAX_JOBS": os.environ.get("MAX_JOBS", "2")}
    env.pop("TORCH_CUDA_ARCH_LIST", None)
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp / "dist"), cwd=ROOT, env=env)
    sdist = next((tmp / "dist").glob("adain_cuda-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "src", filter="data")
    return next((tmp / "src").iterdir()), env


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_the_sdist_holds_every_tracked_build_input_unchanged(unpacked):
    source, _ = unpacked
    inputs = tracked_build_inputs()
    assert any(name.endswith(".cu") for name in inputs) and any(name.endswith(".h") for name in inputs)
    missing = [name for name in inputs if not (source / name).is_file()]
    assert not missing, f"missing from the sdist: {missing}"
    changed = [name for name in inputs if (source / name).read_bytes() != (ROOT / name).read_bytes()]
    assert not changed, f"differ in the sdist: {changed}"
    assert (source / "adain_cuda" / "py.typed").is_file()


def test_a_wheel_built_from_the_sdist_installs_and_imports(unpacked, tmp_path):
    source, env = unpacked
    env = {**env, **({} if FULL_BUILD else {"ADAIN_CUDA_NO_EXTENSION": "1"})}
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
        names = zf.namelist()
        zf.extractall(tmp_path / "installed")
    assert "adain_cuda/py.typed" in names and "adain_cuda/images/imaging.py" in names
    probe = "import adain_cuda, adain_cuda.cli; print(adain_cuda.__version__)"
    if FULL_BUILD:
        probe = (
            "import adain_cuda, torch; from adain_cuda.ops import _library; "
            "assert _library.loaded(), _library.LOAD_ERROR; "
            "x = torch.randn(2, 3, 4, 4); print(adain_cuda.adain(x, x).shape, adain_cuda.__version__)"
        )
    out = run(sys.executable, "-c", probe, cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path / "installed")})
    assert ("torch.Size([2, 3, 4, 4])" in out.stdout) if FULL_BUILD else out.stdout.strip()
