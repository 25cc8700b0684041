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
    print("| case | provider | median ms | GB/s | vs reference | vs compiled |")
    print("|---|---|---:|---:|---:|---:|")
    for group in sorted(groups):
        by_provider = groups[group]
        ref = by_provider.get("reference", {}).get("stats", {}).get("median")
        comp = by_provider.get("reference_compiled", {}).get("stats", {}).get("median")
        for provider, bench in sorted(by_provider.items()):
            med = bench["stats"]["median"]
            speed = lambda base: f"{base / med:.2f}x" if base else "-"  # noqa: E731
            print(f"| {group} | {provider} | {med * 1e3:.4f} | {bench['extra_info'].get('GB_per_s', '-')} "
                  f"| {speed(ref)} | {speed(comp)} |")


if __name__ == "__main__":
    main(sys.argv[1])
