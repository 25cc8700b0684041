"""``adain-cuda video``: stylize a video file (needs PyAV)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .batch import real
from .options import add_network_options, command, csv_floats, csv_list, positive_int, size, stylizer_from, unit_float
from .report import EXIT_FAILED_ITEMS, EXIT_OK, USER_ERRORS, fail

HELP = "stylize a video (needs PyAV: pip install 'adain_cuda[video]')"
EXAMPLES = """  adain-cuda video clip.mp4 --style la_muse.jpg -o clip_la_muse.mp4
  adain-cuda video clip.mp4 --style a.jpg,b.jpg --style-interpolation-weights 1,1 --temporal-smoothing 0.9 \\
      --content-size 540 --precision bf16 -o out.mp4
"""


def add_parser(sub) -> None:
    vd = command(sub, "video", HELP, EXAMPLES)
    vd.add_argument("input", help="the video to stylize (never modified)")
    vd.add_argument(
        "--style",
        type=csv_list,
        nargs="+",
        action="extend",
        required=True,
        help="style image(s), comma- or space-separated",
    )
    vd.add_argument(
        "--style-interpolation-weights", "--style_interpolation_weights", type=csv_floats, help="one weight per style"
    )
    vd.add_argument("-o", "--output", required=True, help="the stylized video (e.g. out.mp4)")
    vd.add_argument("--alpha", type=unit_float, default=1.0, help="content-style trade-off in [0, 1]")
    vd.add_argument("--preserve-color", "--preserve_color", action="store_true", help="keep each frame's colors")
    vd.add_argument(
        "--content-size",
        "--content_size",
        type=size,
        default=0,
        help="shorter side the networks see (0: the source size)",
    )
    vd.add_argument(
        "--keep-size", action="store_true", help="with --content-size: keep the processed size instead of resizing back"
    )
    vd.add_argument("--style-size", "--style_size", type=size, default=512, help="shorter side of the styles (0: keep)")
    vd.add_argument(
        "--temporal-smoothing",
        type=float,
        default=0.0,
        help="0 (off) to <1: moving average of content statistics against flicker; 0.9 is about a ten-frame memory",
    )
    vd.add_argument("--batch-size", type=positive_int, default=8, help="frames per device batch")
    vd.add_argument("--codec", default="libx264", help="video codec")
    vd.add_argument("--crf", type=int, default=18, help="x264/x265 quality: lower is better")
    vd.add_argument("--preset", default="medium", help="x264/x265 speed preset")
    vd.add_argument(
        "--skip-bad-frames",
        action="store_true",
        help="replace unreadable frames by the previous one instead of stopping",
    )
    vd.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_network_options(vd)
    vd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._files import refuse_existing
    from ..video import stylize_video
    from ..video.container import check_encoder, probe

    output = Path(args.output)
    if real(output) == real(Path(args.input)):
        return fail(f"the output {output} is the input; choose another output path")
    try:
        # The output, the input and the encoder's options first: each is named as what is wrong,
        # before the weights load and before any frame is decoded.
        refuse_existing(output, args.overwrite)
        probe(args.input)
        check_encoder(args.codec, args.crf, args.preset)
        report = stylize_video(
            stylizer_from(args),
            args.input,
            output,
            [Path(s) for item in args.style for s in item],
            weights=args.style_interpolation_weights,
            alpha=args.alpha,
            preserve_color=args.preserve_color,
            content_size=args.content_size,
            style_size=args.style_size,
            resize_back=not args.keep_size,
            temporal_smoothing=args.temporal_smoothing,
            batch_size=args.batch_size,
            codec=args.codec,
            crf=args.crf,
            preset=args.preset,
            skip_bad_frames=args.skip_bad_frames,
            overwrite=args.overwrite,
        )
    except USER_ERRORS as exc:
        return fail(exc)
    print(
        f"{output}: {report.frames} frames, {report.width}x{report.height} at {report.fps:g} fps, "
        f"{report.frames_per_second:.1f} frames/s; flicker {report.flicker:.3f} (output frame-to-frame "
        f"change over the input's)"
        + (f"; {report.bad_frames} unreadable frame(s) replaced" if report.bad_frames else "")
    )
    for note in report.notes():
        print(f"note: {note}", file=sys.stderr)
    return EXIT_FAILED_ITEMS if report.incomplete else EXIT_OK
