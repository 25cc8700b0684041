"""Training decoders: options (:mod:`.config`), data (:mod:`.data`: recursive discovery, an
endless sharded sampler, crops that survive bad files), the run log (:mod:`.runlog`) and the
:class:`Trainer`; a torchrun process's placement is :func:`adain_cuda._device.place`."""

from .config import TrainConfig
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer"]
