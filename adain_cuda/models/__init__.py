"""The style-transfer networks: the VGG-19 encoder and the AdaIN decoder in the community weight
layout (:mod:`.networks`), their exact fast rewrites for inference (:mod:`.fast`), and the
published weight files (:mod:`.weights`: registry, cache, verified download)."""

from . import weights
from .fast import FastDecoder, FastEncoder, FastOptions
from .networks import STYLE_LAYERS, Decoder, Encoder, WeightsError, load_state_dict_file

__all__ = [
    "STYLE_LAYERS",
    "Decoder",
    "Encoder",
    "FastDecoder",
    "FastEncoder",
    "FastOptions",
    "WeightsError",
    "load_state_dict_file",
    "weights",
]
