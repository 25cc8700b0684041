"""Video: container I/O with PyAV (:mod:`.container`, no style transfer in it) and stylization
of every frame with a Stylizer (:mod:`.stylize`). Needs ``pip install 'adain_cuda[video]'``."""

from .container import VideoError, VideoReport, process_video
from .stylize import stylize_video

__all__ = ["VideoError", "VideoReport", "process_video", "stylize_video"]
