"""``python -m adain_cuda.demo``: the fused AdaIN op against the reference on this machine.

Prints, for a few feature-map shapes, the largest difference from a float64 reference and the
speed-up over the pure-PyTorch formulation. (Image stylization needs trained decoder weights and
arrives with the networks; this demo exercises the op itself.)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from . import _extension, adain, reference


def median_ms(fn, device: str, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per case (median)")
    args = parser.parse_args(argv)

    device = args.device
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; "
          f"binary: {_extension.build_info()}")
    shapes = [(1, 512, 64, 64), (8, 512, 32, 32)]
    if device == "cuda":
        shapes.append((1, 512, 135, 240))
    print(f"{'content shape':<22}{'dtype':<10}{'max |err|':>11}{'fused ms':>10}{'ref ms':>9}{'speed-up':>10}")
    for shape in shapes:
        for dtype in (torch.float32, torch.bfloat16):
            gen = torch.Generator(device=device).manual_seed(0)
            content = (torch.randn(shape, generator=gen, device=device) * 1.5 + 0.5).to(dtype)
            style = (torch.randn((1, shape[1], 64, 64), generator=gen, device=device) * 0.7 - 0.2).to(dtype)
            with torch.no_grad():
                out = adain(content, style, alpha=0.8)
                exact = reference.adain(content.double(), style.double(), alpha=0.8)
                err = (out.double() - exact).abs().max().item()
                fused = median_ms(lambda: adain(content, style, alpha=0.8), device, args.repeats)
                ref = median_ms(lambda: reference.adain(content, style, alpha=0.8), device, args.repeats)
            print(f"{str(tuple(shape)):<22}{str(dtype).replace('torch.', ''):<10}{err:>11.2e}"
                  f"{fused:>10.3f}{ref:>9.3f}{ref / fused:>9.1f}x")


if __name__ == "__main__":
    main()
