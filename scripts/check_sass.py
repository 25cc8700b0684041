"""Checks the compiled sm_90 kernels from their machine code, without a GPU.

    python scripts/check_sass.py [adain_cuda/_C....so]

Reads the SASS (cuobjdump, from the CUDA toolkit or the one the CUDA torch wheel's triton ships)
and the resource usage of every kernel in the extension, and checks the hot kernels: the fused
plane kernels (forward and backward, a block or a cluster per plane), the pointwise kernels and
the feature-map kernels (pooling, sub-pixel interleave), for float32, float16 and bfloat16 with
16-byte vectors, and the direct first and last layers:
  * no local-memory traffic (LDL/STL: register spills),
  * registers within the budget their launch plans for (docs/kernels.md),
  * 128-bit global loads and stores, one per vector of the main loops, and no element-wide
    stores besides the per-plane statistics;
  * direct layers: every multiply-add unrolled (one FFMA per weight, its operand read from the
    launch parameters, no shared or local memory), the 64-channel side read or written in
    128-bit vectors.
Prints a line per hot kernel and exits 1 if any check fails (2 if the binary has no sm_90 code).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Element types with their 16-byte vector width and the SASS suffix of an element-wide store.
TYPES = {"float": (4, "STG.E"), "c10::Half": (8, "STG.E.U16"), "c10::BFloat16": (8, "STG.E.U16")}
# Registers per thread each kernel family may use: the fused kernels run up to 1024 threads a
# block (64 registers fill the register file with one block), their warp-per-plane form 256
# (WARP_REGISTER_BUDGET keeps two such blocks resident); the pointwise kernels run 256 threads and
# should keep at least four blocks per multiprocessor resident.
REGISTER_BUDGET = {
    "adain_fused_forward_kernel": 64,
    "adain_fused_backward_kernel": 64,
    "apply_kernel": 64,
    "loss_apply_kernel": 64,
    "chunk_moments_kernel": 64,
    "loss_forward_kernel": 64,
    "max_pool2x2_kernel": 64,
    "subpixel_interleave_kernel": 64,
}
# 128-bit loads per output vector where it is not one per input map: a pooling window's four.
LOADS_PER_VECTOR = {"max_pool2x2_kernel": 4}
# The direct layers (layer_kernels.cu), template <T, Index, RELU>: a thread per output pixel, with
# 3 * 3 * 3 * 64 multiply-adds, and which side of the layer has the 64 channels (moved in 16-byte
# vectors: 9 input pixels read, or one output pixel written).
DIRECT_CONV = {"conv3x3_reflect_first_kernel": "stores", "conv3x3_reflect_last_kernel": "loads"}
DIRECT_CONV_FMAS = 9 * 3 * 64
# Reduction kernels: read whole maps with 128-bit loads, write only per-chunk results.
REDUCTIONS = {"chunk_moments_kernel", "loss_forward_kernel"}
WARP_REGISTER_BUDGET = 128
DIRECT_CONV_REGISTER_BUDGET = 64  # 256 threads a block, several blocks a multiprocessor
# adain::cuda::Group, by value (device_blocks.cuh): how a fused kernel shares out planes.
GROUPS = ("block", "cluster", "warp")
# Element-wide stores a fused kernel may make: its per-plane statistics (thread 0 of a block).
STATS_STORES = {"adain_fused_forward_kernel": 4, "adain_fused_backward_kernel": 2}


@dataclass
class Kernel:
    name: str  # demangled
    registers: int = 0
    sequence: list[str] = field(default_factory=list)  # the instructions in order

    @cached_property
    def ops(self) -> Counter:
        """How often each instruction occurs."""
        return Counter(self.sequence)


def find_cuobjdump() -> str:
    candidates = [os.environ.get("CUOBJDUMP", "")]
    try:
        import triton

        candidates.append(str(Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"))
    except ImportError:
        pass
    candidates += [
        os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin/cuobjdump"),
        shutil.which("cuobjdump") or "",
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    sys.exit("check_sass: no cuobjdump found (set CUOBJDUMP, or install the CUDA toolkit or triton)")


def demangle(names: list[str]) -> dict[str, str]:
    cxxfilt = shutil.which("c++filt")
    if cxxfilt is None:
        sys.exit("check_sass: c++filt (binutils) is needed to read the kernel names")
    out = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.splitlines()))


def read_kernels(binary: str) -> list[Kernel]:
    tool = find_cuobjdump()
    sass = subprocess.run([tool, "-sass", binary], capture_output=True, text=True, check=True).stdout
    usage = subprocess.run([tool, "-res-usage", binary], capture_output=True, text=True, check=True).stdout
    if "arch = sm_90" not in sass:
        print(f"check_sass: {binary} has no sm_90 code (a CPU-only build?)")
        sys.exit(2)
    sequences: dict[str, list[str]] = {}
    sequence = None
    for line in sass.splitlines():
        if m := re.search(r"Function : (\S+)", line):
            sequence = sequences.setdefault(m.group(1), [])
        elif sequence is not None and (m := re.search(r"\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", line)):
            sequence.append(m.group(1))
    registers = {m.group(1): int(m.group(2)) for m in re.finditer(r"Function (\S+):\s*\n?\s*REG:(\d+)", usage)}
    names = demangle(list(sequences))
    return [Kernel(names[k], registers.get(k, 0), v) for k, v in sequences.items()]


def template_args(name: str) -> list[str]:
    inner = name[name.index("<") + 1 : name.index(">(")]
    return [a.strip() for a in inner.split(",")]


def hot(kernel: Kernel) -> tuple[str, str, list[str]] | None:
    """(family, element type, template arguments) of a hot kernel, else None."""
    m = re.search(r"::(\w+)<", kernel.name)
    if m is None or m.group(1) not in REGISTER_BUDGET and m.group(1) not in DIRECT_CONV:
        return None
    args = template_args(kernel.name)
    if m.group(1) in DIRECT_CONV:
        return (m.group(1), args[0], args) if args[0] in TYPES else None
    if len(args) < 2 or args[0] not in TYPES or int(args[1]) != TYPES[args[0]][0]:
        return None  # scalar (unvectorized) or float64 instantiations
    return m.group(1), args[0], args


def group_of(args: list[str]) -> str | None:
    """The fused kernels' adain::cuda::Group argument by name, else None."""
    m = re.fullmatch(r"\(adain::cuda::Group\)(\d)", args[-1])
    return GROUPS[int(m.group(1))] if m else None


def check(kernel: Kernel, family: str, dtype: str, args: list[str]) -> list[str]:
    problems = []
    spills = kernel.ops["STL"] + kernel.ops["LDL"]
    if spills:
        problems.append(f"{spills} local-memory (spill) instructions")
    if family in DIRECT_CONV:
        return problems + check_direct_conv(kernel, DIRECT_CONV[family], TYPES[dtype][0])
    group = group_of(args)
    budget = WARP_REGISTER_BUDGET if group == "warp" else REGISTER_BUDGET[family]
    if kernel.registers > budget:
        problems.append(f"{kernel.registers} registers > {budget}")
    loads = sum(n for op, n in kernel.ops.items() if op.startswith("LDG.E.128"))
    if family in REDUCTIONS:
        if loads == 0:
            problems.append("no 128-bit loads")
        return problems
    stores = sum(n for op, n in kernel.ops.items() if op.startswith("STG.E.128"))
    vectors = int(args[2]) if family.startswith("adain_fused") else 1
    two_inputs = "backward" in family or (family == "apply_kernel" and args[-1] == "true")  # HAS_U
    want_loads = LOADS_PER_VECTOR.get(family, vectors * (2 if two_inputs else 1))
    if loads < want_loads:
        problems.append(f"{loads} 128-bit loads, want {want_loads}")
    if stores < vectors:
        problems.append(f"{stores} 128-bit stores, want {vectors}")
    if group == "cluster":
        problems += check_cluster(kernel.sequence)
    narrow = kernel.ops[TYPES[dtype][1]]
    allowed = STATS_STORES.get(family, 0)
    if narrow > allowed:
        problems.append(f"{narrow} element-wide stores (at most {allowed}: the statistics)")
    return problems


def check_direct_conv(kernel: Kernel, vector_side: str, vec: int) -> list[str]:
    problems = []
    if kernel.registers > DIRECT_CONV_REGISTER_BUDGET:
        problems.append(f"{kernel.registers} registers > {DIRECT_CONV_REGISTER_BUDGET}")
    fmas = sum(n for op, n in kernel.ops.items() if op.startswith("FFMA"))
    if fmas != DIRECT_CONV_FMAS:
        problems.append(f"{fmas} FFMA, want {DIRECT_CONV_FMAS} (one per weight, unrolled)")
    shared = sum(n for op, n in kernel.ops.items() if op.startswith(("LDS", "STS")))
    if shared:
        problems.append(f"{shared} shared-memory instructions (the weights belong in the parameters)")
    prefix, want = ("LDG.E.128", 9 * 64 // vec) if vector_side == "loads" else ("STG.E.128", 64 // vec)
    got = sum(n for op, n in kernel.ops.items() if op.startswith(prefix))
    if got != want:
        problems.append(f"{got} {prefix}, want {want}")
    return problems


def check_cluster(sequence: list[str]) -> list[str]:
    """A cluster kernel: every plane load issued before the cluster's one exchange (one
    synchronizing arrive and wait, then an early arrive), and no fence after the first store."""
    problems = []
    arrives = [i for i, op in enumerate(sequence) if op.startswith("UCGABAR_ARV")]
    loads = [i for i, op in enumerate(sequence) if op.startswith("LDG.E.128")]
    stores = [i for i, op in enumerate(sequence) if op.startswith("STG.E.128")]
    if len(arrives) != 2:
        problems.append(f"{len(arrives)} cluster barrier arrivals, want 2 (one exchange, one early arrive)")
    elif loads and max(loads) > arrives[0]:
        problems.append("plane loads after the cluster exchange")
    if stores and any(op.startswith("MEMBAR") for op in sequence[stores[0] :]):
        problems.append("a memory fence after the output stores")
    return problems


def main() -> int:
    if len(sys.argv) > 1:
        binary = sys.argv[1]
    else:
        found = sorted(glob.glob(str(ROOT / "adain_cuda" / "_C*.so")))
        if not found:
            sys.exit("check_sass: no built extension under adain_cuda/ (build it first)")
        binary = found[0]
    failed = checked = 0
    for kernel in sorted(read_kernels(binary), key=lambda k: k.name):
        info = hot(kernel)
        if info is None:
            continue
        checked += 1
        problems = check(kernel, *info)
        failed += bool(problems)
        short = kernel.name[: kernel.name.index(">(") + 1].replace("void ", "")
        short = short.replace("adain::(anonymous namespace)::", "")
        if (group := group_of(info[2])) is not None:
            short = short.replace(info[2][-1], group)
        status = "FAIL " + "; ".join(problems) if problems else "ok"
        print(f"{short:70s} REG {kernel.registers:3d}  {status}")
    print(f"check_sass: {checked} hot kernels, {failed} failing")
    if checked == 0:
        print("check_sass: no hot kernel found: the kernel names changed?")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
