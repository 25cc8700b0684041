"""Whole image datasets stylized (Stylized-ImageNet and the like): the same folder tree out, each
image with styles drawn reproducibly from a style bank, batched, resumable, split over the
processes of a torchrun launch (docs/datasets.md)."""

from .plan import VERSION_SUFFIX, DatasetPlan, Job, pick_style, plan_dataset
from .runner import FAILED, MANIFEST, DatasetReport, stylize_dataset

__all__ = [
    "FAILED",
    "MANIFEST",
    "VERSION_SUFFIX",
    "DatasetPlan",
    "DatasetReport",
    "Job",
    "pick_style",
    "plan_dataset",
    "stylize_dataset",
]
