"""Samples on disk: lazy JSONL and Hugging Face dataset loading, validation, and synthetic task generators."""

from mmrft.data.errors import SampleError
from mmrft.data.jsonl import JsonlDataset, resolve_media_paths
from mmrft.data.sources import open_dataset
from mmrft.data.validate import check_sample, register_solution_checker

__all__ = [
    "JsonlDataset",
    "SampleError",
    "check_sample",
    "open_dataset",
    "register_solution_checker",
    "resolve_media_paths",
]
