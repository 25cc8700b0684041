"""``adain-cuda train``: train a decoder. Its options are the fields of
:class:`~adain_cuda.training.TrainConfig`, with their help and defaults."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from ..training.config import TrainConfig
from .common import EXIT_OK, USER_ERRORS, csv_floats, fail

HELP = "train a decoder (several GPUs: torchrun --nproc_per_node N -m adain_cuda train ...)"

# Fields whose command-line form is not "--name VALUE of the field's type".
_SPECIAL = {
    "layer_weights": dict(type=csv_floats),
    "channels_last": dict(choices=["auto", "on", "off"], default="auto"),
    "resume": dict(nargs="?", const="auto"),
}
_TO_CONFIG = {"channels_last": {"auto": None, "on": True, "off": False}}


def add_parser(sub) -> None:
    tr = sub.add_parser("train", help=HELP, description=HELP)
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        meta = dict(f.metadata)
        if meta.pop("cli", True) is False:
            continue
        flags = meta.pop("flags", (f"--{f.name.replace('_', '-')}",))
        options = dict(help=meta.pop("help"), dest=f.name, **meta)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = hints[f.name]
        if f.name in _SPECIAL:
            options.update(_SPECIAL[f.name])
        elif kind is bool:  # --flag for a default of False, --flag/--no-flag for True
            options["action"] = argparse.BooleanOptionalAction if options["default"] else "store_true"
        elif kind in (int, float):
            options["type"] = kind
        if options.get("default") is not None and "action" not in options:
            options["help"] += f" (default {options['default']})"
        tr.add_argument(*flags, **options)
    tr.set_defaults(run=run)


def config_from(args: argparse.Namespace) -> TrainConfig:
    values = {}
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
    return EXIT_OK
