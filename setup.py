"""Build script for adain_cuda's compiled extension (adain_cuda._C).

CUDA kernels are built when a GPU is visible, when FORCE_CUDA=1, or when TORCH_CUDA_ARCH_LIST is
set; FORCE_CUDA=0 forces a CPU-only build. Otherwise the extension holds the CPU kernels only.
Compilation uses ninja and honours MAX_JOBS (both handled by torch's BuildExtension).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils import cpp_extension

ROOT = Path(__file__).parent.resolve()
CSRC = ROOT / "csrc"

# Architectures built when none are asked for and no GPU is visible: every data-centre and
# consumer generation CUDA 13 supports, plus PTX for newer cards. Each one adds compile time;
# set TORCH_CUDA_ARCH_LIST (e.g. "9.0") to build only what you need.
DEFAULT_ARCH_LIST = "7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX"


def check_build_tools() -> None:
    """``pip install --no-build-isolation`` uses the environment's own build tools: without ninja
    torch builds one file at a time with no incremental rebuilds, and without wheel pip cannot
    package the result. Say what to install instead of failing half-way."""
    import importlib.util
    import shutil

    missing = [
        name
        for name, found in (
            ("ninja", shutil.which("ninja") or importlib.util.find_spec("ninja")),
            ("wheel", importlib.util.find_spec("wheel")),
        )
        if not found
    ]
    if missing:
        sys.exit(
            f"adain_cuda: building needs {' and '.join(missing)} installed first: "
            f"pip install setuptools wheel ninja, then pip install --no-build-isolation ."
        )


def log(msg: str) -> None:
    print(f"[adain_cuda build] {msg}", file=sys.stderr, flush=True)


def want_cuda() -> bool:
    force = os.environ.get("FORCE_CUDA", "").strip()
    if force == "0":
        return False
    return force == "1" or bool(os.environ.get("TORCH_CUDA_ARCH_LIST")) or torch.cuda.is_available()


def nvcc_version(cuda_home: str) -> str:
    out = subprocess.run(
        [os.path.join(cuda_home, "bin", "nvcc"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"release (\d+\.\d+)", out)
    if not match:
        sys.exit(f"adain_cuda: could not read the CUDA version from nvcc --version:\n{out}")
    return match.group(1)


def check_cuda_toolchain() -> str:
    """Stops with a clear message unless nvcc exists and matches torch's CUDA major version."""
    if torch.version.cuda is None:
        sys.exit(
            "adain_cuda: a CUDA build was requested (FORCE_CUDA / TORCH_CUDA_ARCH_LIST / a "
            f"visible GPU) but torch {torch.__version__} is a CPU-only build. Install a CUDA "
            "build of torch, or set FORCE_CUDA=0 for a CPU-only build."
        )
    cuda_home = cpp_extension.CUDA_HOME
    if not cuda_home or not os.path.exists(os.path.join(cuda_home, "bin", "nvcc")):
        sys.exit(
            "adain_cuda: a CUDA build was requested but nvcc was not found. Set CUDA_HOME "
            "to the CUDA toolkit (e.g. CUDA_HOME=/usr/local/cuda), or FORCE_CUDA=0."
        )
    nvcc = nvcc_version(cuda_home)
    if nvcc.split(".")[0] != torch.version.cuda.split(".")[0]:
        sys.exit(
            f"adain_cuda: nvcc in {cuda_home} is CUDA {nvcc} but torch {torch.__version__} "
            f"was built with CUDA {torch.version.cuda}; the major versions must match. Point "
            "CUDA_HOME at a matching toolkit or install the matching torch build."
        )
    return nvcc


def pip_cuda_includes(cuda_home: str) -> list[str]:
    """Header folders of the pip-installed CUDA libraries that torch's headers include.

    A toolkit with only the compiler (no cuSPARSE/cuBLAS headers) can still build against a
    CUDA torch wheel, which ships those headers in the `nvidia` packages.
    """
    if os.path.exists(os.path.join(cuda_home, "include", "cusparse.h")):
        return []
    try:
        import nvidia
    except ImportError:
        return []
    return sorted({str(h.parent) for root in nvidia.__path__ for h in Path(root).glob("*/include/cusparse.h")})


def shared_cxx_runtime_args() -> list[str]:
    """Linker arguments that keep the C++ runtime shared with torch's.

    Where the compiler has no libstdc++.so link (a toolchain image without the -dev package) or
    -static-libstdc++ is in the flags, g++ links libstdc++.a into the extension. The extension then
    throws exceptions from its own copy of the runtime, which torch's copy does not catch reliably:
    an argument error raised in C++ crashed the Python process on such a machine instead of
    raising RuntimeError. Naming the shared runtime first makes the static archive unused.
    """
    cxx = os.environ.get("CXX", "c++")
    try:
        dev_link = subprocess.run(
            [cxx, "-print-file-name=libstdc++.so"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return []
    flags = " ".join(os.environ.get(k, "") for k in ("LDFLAGS", "CXXFLAGS", "CFLAGS"))
    if os.path.isfile(dev_link) and "-static-libstdc++" not in flags:
        return []
    log("libstdc++ would be linked statically here; linking the shared libstdc++.so.6 instead")
    return ["-l:libstdc++.so.6"]


def write_build_info(description: str) -> Path:
    """The build description is compiled into the binary (see build_info() in csrc/schemas.cpp)."""
    gen = ROOT / "build" / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    header = gen / "adain_build_info.h"
    text = f"#define ADAIN_BUILD_DESCRIPTION {json.dumps(description)}\n"
    # Rewritten only when it changes: ninja would otherwise recompile ops.cpp on every build.
    if not header.exists() or header.read_text() != text:
        header.write_text(text)
    return gen


def extension():
    sources = [str(p.relative_to(ROOT)) for p in [*sorted(CSRC.glob("*.cpp")), *sorted((CSRC / "cpu").glob("*.cpp"))]]
    cxx_flags = ["-O3", "-fopenmp"]  # the C++ standard is the one torch asks for
    if not want_cuda():
        description = f"CPU only; torch {torch.__version__}"
        log(f"building CPU kernels only ({description})")
        gen = write_build_info(description)
        return cpp_extension.CppExtension(
            "adain_cuda._C",
            sources,
            include_dirs=[str(gen)],
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp", *shared_cxx_runtime_args()],
        )

    nvcc = check_cuda_toolchain()
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "the visible GPUs' architectures")
    description = f"CPU + CUDA {nvcc} for {archs}; torch {torch.__version__}"
    log(f"building CPU and CUDA kernels ({description}; MAX_JOBS={os.environ.get('MAX_JOBS', 'auto')})")
    gen = write_build_info(description)
    sources += [str(p.relative_to(ROOT)) for p in sorted((CSRC / "cuda").glob("*.cu"))]
    return cpp_extension.CUDAExtension(
        "adain_cuda._C",
        sources,
        include_dirs=[str(gen), *pip_cuda_includes(cpp_extension.CUDA_HOME)],
        define_macros=[("ADAIN_WITH_CUDA", "1")],
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]},
        extra_link_args=["-fopenmp", *shared_cxx_runtime_args()],
    )


def ext_modules() -> list:
    # The Makefile installs the package editable (for the command and the extras) without the
    # extension, then compiles it in place with ninja, incrementally.
    if os.environ.get("ADAIN_CUDA_NO_EXTENSION") == "1":
        return []
    check_build_tools()
    return [extension()]


setup(
    ext_modules=ext_modules(),
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
