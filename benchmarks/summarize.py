"""Turn a pytest-benchmark JSON file into the Markdown tables of benchmarks/RESULTS.md.

python benchmarks/summarize.py .benchmarks/*/0001_*.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    print(f"machine: {data['machine_info'].get('device', '?')}, torch {data['machine_info'].get('torch', '?')}\n")
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        groups[bench["group"]][bench["extra_info"].get("provider", bench["name"])] = bench
    peaks = any("peak_gib" in b["extra_info"] for b in data["benchmarks"])
    print(
        "| case | provider | median ms | GB/s or images/s | vs eager baseline | vs compiled baseline |"
        + (" peak GiB |" if peaks else "")
    )
    print("|---|---|---:|---:|---:|---:|" + ("---:|" if peaks else ""))
    for group in sorted(groups):
        by_provider = groups[group]

        def median_of(*names):
            for name in names:
                if name in by_provider:
                    return by_provider[name]["stats"]["median"]
            return None

        eager = median_of("reference", "plain_eager", "naive_per_frame", "plain_fp32_eager")
        compiled = median_of("reference_compiled", "plain_compiled", "plain_bf16_compiled")
        for provider, bench in sorted(by_provider.items()):
            med = bench["stats"]["median"]
            speed = lambda base: f"{base / med:.2f}x" if base else "-"  # noqa: E731
            info = bench["extra_info"]
            rate = info.get("GB_per_s", info.get("images_per_s", "-"))
            peak = f" {info.get('peak_gib', '-')} |" if peaks else ""
            print(f"| {group} | {provider} | {med * 1e3:.4f} | {rate} | {speed(eager)} | {speed(compiled)} |{peak}")


if __name__ == "__main__":
    main(sys.argv[1])
