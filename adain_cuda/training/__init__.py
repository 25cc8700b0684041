"""Training decoders: options (:mod:`.config`), data (:mod:`.data`: recursive discovery, an
endless sharded sampler, crops that survive bad files), process placement (:mod:`.distributed`),
the run log (:mod:`.runlog`) and the :class:`Trainer`."""

from .config import TrainConfig
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer"]
