"""``adain-cuda app``: the local web page (adain_cuda.app), served on 127.0.0.1 by default."""

from __future__ import annotations

import argparse

from .options import add_network_options, command, port
from .report import EXIT_OK, USER_ERRORS, fail

HELP = "a local web page to stylize images and clips and transfer colours (needs adain_cuda[app])"
EXAMPLES = """  adain-cuda app                      # then open http://127.0.0.1:7860
  adain-cuda app --port 8080 --device cuda
  adain-cuda app --host 0.0.0.0       # reachable from other machines of your network
"""


def add_parser(sub) -> None:
    p = command(sub, "app", HELP, EXAMPLES)
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    p.add_argument("--port", type=port, default=7860, help="port to serve on (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    add_network_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..app import build_app, launch
    except ImportError as exc:
        return fail(str(exc))
    try:
        app = build_app(
            vgg=args.vgg,
            decoder=args.decoder,
            device=args.device,
            allow_download=not args.no_download,
            precision=args.precision,
        )
    except USER_ERRORS as exc:
        return fail(exc)
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C stops it)")
    try:
        launch(app, host=args.host, port=args.port, share=args.share)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
        app.adain_session.cleanup()
    print("stopped")
    return EXIT_OK
