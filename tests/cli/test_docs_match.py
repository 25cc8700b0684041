"""The documentation names every option each command has: docs/cli.md for the commands, with
training's options in docs/training.md and video's in docs/video.md."""

import argparse
from pathlib import Path

import pytest

from adain_cuda.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {"train": ["training.md"], "video": ["video.md", "cli.md"]}


def commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.skipif(not DOCS.is_dir(), reason="needs the source tree's docs")
@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_is_documented(name):
    text = "".join((DOCS / page).read_text() for page in PAGES.get(name, ["cli.md"]))
    assert f"adain-cuda {name}" in text or name in ("train", "video")
    missing = []
    for action in commands()[name]._actions:
        dashed = [o for o in action.option_strings if o.startswith("--") and "_" not in o and o != "--help"]
        # --no-x of a --x / --no-x pair is documented with --x
        dashed = [o for o in dashed if not (o.startswith("--no-") and f"--{o[5:]}" in action.option_strings)]
        if dashed and not any(o in text for o in dashed):
            missing.append(dashed[0])
    assert not missing, f"{name}: options missing from the docs: {missing}"
