"""``adain-cuda train``: train a decoder. Its options are the fields of
:class:`~adain_cuda.training.TrainConfig`, with their help and defaults."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from ..training.config import TrainConfig
from .options import command, csv_floats, seed
from .report import EXIT_OK, USER_ERRORS, fail

HELP = "train a decoder (several GPUs: torchrun --nproc_per_node N -m adain_cuda train ...)"
EXAMPLES = """  adain-cuda train --content-dir coco/train2014 --style-dir wikiart -o runs/mine
  adain-cuda train --content-dir coco --style-dir wikiart -o runs/mine --resume
  torchrun --nproc_per_node 4 -m adain_cuda train --content-dir coco --style-dir wikiart -o runs/big
  adain-cuda train --content_dir coco --style_dir wikiart --save_dir experiments --max_iter 160000
"""
# The community port's spellings of options whose names differ here.
PORT_ALIASES = {"output_dir": "--save_dir", "workers": "--n_threads", "save_every": "--save_model_interval"}

# Fields whose command-line form is not "--name VALUE of the field's type".
_SPECIAL: dict[str, dict[str, Any]] = {
    "layer_weights": dict(type=csv_floats),
    "channels_last": dict(choices=["auto", "on", "off"], default="auto"),
    "fast": dict(choices=["auto", "on", "off"], default="auto"),
    "resume": dict(nargs="?", const="auto"),
    "seed": dict(type=seed),
}
_AUTO_ON_OFF = {"auto": None, "on": True, "off": False}
_TO_CONFIG = {"channels_last": _AUTO_ON_OFF, "fast": _AUTO_ON_OFF}


def add_parser(sub) -> None:
    tr = command(sub, "train", HELP, EXAMPLES)
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        meta = dict(f.metadata)
        if meta.pop("cli", True) is False:
            continue
        flags = list(meta.pop("flags", (f"--{f.name.replace('_', '-')}",)))
        if "_" in f.name:  # the port's spelling: --max_iter as well as --max-iter
            flags.append(f"--{f.name}")
        if f.name in PORT_ALIASES:
            flags.append(PORT_ALIASES[f.name])
        options: dict[str, Any] = dict(help=meta.pop("help"), dest=f.name, **meta)
        if f.default is not dataclasses.MISSING:
            options["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            options["default"] = f.default_factory()
        else:
            options["required"] = True
        kind = hints[f.name]
        if f.name in _SPECIAL:
            options.update(_SPECIAL[f.name])
        elif kind is bool:  # --flag for a default of False, --flag/--no-flag for True
            options["action"] = argparse.BooleanOptionalAction if options["default"] else "store_true"
        elif kind in (int, float):
            options["type"] = kind
        tr.add_argument(*flags, **options)
    tr.set_defaults(run=run)


def config_from(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        if not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        values[f.name] = _TO_CONFIG[f.name][value] if f.name in _TO_CONFIG else value
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from ..training import Trainer

    try:
        Trainer(config_from(args)).train()
    except USER_ERRORS as exc:  # bad options, folders, weights, checkpoints; a folder of bad images
        return fail(exc)
    except OSError as exc:  # a full disk or an unwritable run folder while saving
        return fail(f"could not write the run's files: {exc}")
    return EXIT_OK
