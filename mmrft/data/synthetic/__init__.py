"""Synthetic datasets generated from a seed; `python -m mmrft.data.synthetic --help`."""

from mmrft.data.synthetic.shapes import SPLITS, TASKS, make_sample, write_split

__all__ = ["SPLITS", "TASKS", "make_sample", "write_split"]
