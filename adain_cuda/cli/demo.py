"""``adain-cuda demo`` (``make demo``): the package's main job on this machine.

1. The fused AdaIN op against the reference: largest difference from float64 and speed-up.
2. With the pretrained weights (downloaded into the cache on first use): stylizes sample images, a
   photograph that ships with matplotlib and two style images this demo draws, and writes the
   results and a contact sheet to ``demo_output/``. Without the weights it says so and how to get
   them; it never shows the output of untrained networks as a stylization.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from ..models import WeightsError
from ..ops import _library, adain, reference

HELP = "the fused op against the reference, then sample stylizations into demo_output/"


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


def op_check(device: str, repeats: int) -> None:
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; "
          f"binary: {_library.build_info()}")
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
                fused = median_ms(lambda: adain(content, style, alpha=0.8), device, repeats)
                ref = median_ms(lambda: reference.adain(content, style, alpha=0.8), device, repeats)
            print(f"{str(tuple(shape)):<22}{str(dtype).replace('torch.', ''):<10}{err:>11.2e}"
                  f"{fused:>10.3f}{ref:>9.3f}{ref / fused:>9.1f}x")


def sample_images() -> tuple[Path, list[torch.Tensor]]:
    """A photograph shipped with matplotlib, and two style images drawn here: matplotlib's
    terrain sample in a vivid colormap, and a mosaic of random colored cells."""
    import numpy as np
    from matplotlib import cbook, colormaps

    photo = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as dem:
        height = dem["elevation"].astype(np.float64)
    height = (height - height.min()) / np.ptp(height)
    terrain = torch.from_numpy(colormaps["twilight_shifted"](height)[..., :3]).permute(2, 0, 1).float()
    rng = np.random.default_rng(7)
    seeds, colors = rng.uniform(0, 256, (60, 2)), rng.uniform(0, 1, (60, 3))
    yy, xx = np.mgrid[0:256, 0:256]
    nearest = ((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2).argmin(-1)
    mosaic = torch.from_numpy(colors[nearest]).permute(2, 0, 1).float()
    return photo, [terrain, mosaic]


def stylize_samples(device: str, out_dir: Path) -> None:
    from ..stylize import Stylizer, imaging
    from ..stylize.sheet import contact_sheet

    try:
        stylizer = Stylizer.from_pretrained(device=device)
    except WeightsError as exc:
        print("\nNo stylization: the pretrained weights are not available.\n"
              f"  {exc}\n  Get them with `adain-cuda weights download` (or pass --vgg/--decoder to "
              "`adain-cuda stylize`), then run the demo again.")
        return
    try:
        photo, styles = sample_images()
    except ImportError:
        print("\nThe sample photograph comes with matplotlib: pip install 'adain_cuda[demo]'")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for j, style in enumerate(styles):
        imaging.save_image(style, out_dir / f"style_{j}.png")
        results[(0, j)] = stylizer.stylize(photo, style)
        imaging.save_image(results[(0, j)], out_dir / f"grace_hopper_stylized_style_{j}.png")
    mixed = stylizer.stylize(photo, styles, weights=[0.5, 0.5], alpha=0.8)
    imaging.save_image(mixed, out_dir / "grace_hopper_interpolated.png")
    kept = stylizer.stylize(photo, styles[1], preserve_color=True)
    imaging.save_image(kept, out_dir / "grace_hopper_preserve_color.png")
    imaging.save_pil(contact_sheet([photo], styles, results), out_dir / "contact_sheet.png")
    print(f"\nStylized the sample photograph with two styles; results and contact sheet in {out_dir}/")


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per case (median; default 20)")
    p.add_argument("--output", default="demo_output", help="folder for the stylized samples (default demo_output)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    op_check(args.device, args.repeats)
    stylize_samples(args.device, Path(args.output))
    return 0
