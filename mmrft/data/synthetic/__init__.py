"""Synthetic datasets generated from a seed; `python -m mmrft.data.synthetic --help`.

Image tasks (:mod:`shapes`): grounding, classification, counting. Video tasks
(:mod:`moving_shapes`): temporal_grounding, video_qa, tracking. Driving plans
(:mod:`driving_plans`): driving_plan, the VLM waypoint planner's task.
"""

import json
from pathlib import Path

from mmrft.data.synthetic.driving_plans import TASK as PLAN_TASK
from mmrft.data.synthetic.driving_plans import write_plan_split
from mmrft.data.synthetic.moving_shapes import write_video_split
from mmrft.data.synthetic.shapes import SPLITS, TASKS, make_sample, write_split

VIDEO_TASKS = ("temporal_grounding", "video_qa", "tracking")
ALL_TASKS = (*TASKS, *VIDEO_TASKS, PLAN_TASK)
VIDEO_OPTIONS = ("train_shapes", "train_start", "train_max_overlap", "question_first")
SPEC_FILE = "synthetic.json"
"""Beside generated data: the spec it was generated from (:func:`full_spec`)."""


def full_spec(spec: dict) -> dict:
    """``spec`` (task, split sizes, options) with its defaults filled in, as plain JSON values:
    two specs that generate the same data compare equal."""
    full = {"seed": 0, "image_size": 112, **spec}
    if full["task"] in VIDEO_TASKS:
        full = {"train_start": 0, "question_first": True, **full}
    return json.loads(json.dumps(full))


def write_synthetic(out_dir: str | Path, spec: dict) -> Path:
    """Generate every split ``spec`` names (``{"task": ..., "train": 1000, "heldout": 200, "seed": 0,
    ...}``) into ``out_dir`` and record the spec there in :data:`SPEC_FILE`; returns ``out_dir``.
    ``"format": "parquet"`` writes ``{split}.parquet`` files with the images embedded."""
    out_dir, spec = Path(out_dir), full_spec(spec)
    splits = dict(spec)
    task, seed, size = splits.pop("task"), splits.pop("seed"), splits.pop("image_size")
    format = splits.pop("format", "jsonl")
    video = {key: splits.pop(key) for key in VIDEO_OPTIONS if key in splits}
    (out_dir / SPEC_FILE).unlink(missing_ok=True)  # written last: present only beside the splits it describes
    for split, n in splits.items():
        write_synthetic_split(task, split, out_dir, n=int(n), seed=seed, size=size, format=format, **video)
    (out_dir / SPEC_FILE).write_text(json.dumps(spec))
    return out_dir


def write_synthetic_split(
    task: str, split: str, out_dir: str | Path, n: int, seed: int = 0, size: int = 112, format: str = "jsonl", **video
) -> Path:
    """Write a split of any synthetic task (image, video or driving plans) into ``out_dir``.

    Driving plans have a fixed 56-pixel frame (the simulator's renderer): `size` does not apply.
    ``video``: options of the video tasks' generator: ``train_shapes`` (shapes per training clip,
    drawn from these; held-out clips keep theirs), ``train_start`` (index of the first training
    clip: RL data disjoint from the clips an SFT base was trained on, same held-out split),
    ``train_max_overlap`` (temporal grounding: training clips in which no two shapes' windows
    overlap by more than this temporal IoU; held-out clips keep theirs) and ``question_first``.
    ``format``: jsonl (media files beside) or parquet (images embedded, videos beside).
    """
    if video and task not in VIDEO_TASKS:
        raise ValueError(f"{', '.join(video)}: options of the video tasks ({', '.join(VIDEO_TASKS)}), not of {task}")
    if task == PLAN_TASK:
        return write_plan_split(split, out_dir, n, seed=seed, format=format)
    if task in VIDEO_TASKS:
        train_shapes, train_start = video.pop("train_shapes", None), video.pop("train_start", 0)
        train_max_overlap = video.pop("train_max_overlap", None)
        shapes = tuple(train_shapes) if split == "train" and train_shapes else None
        start = int(train_start) if split == "train" else 0
        max_overlap = train_max_overlap if split == "train" else None
        return write_video_split(
            task, split, out_dir, n, seed=seed, size=size, shapes=shapes, start=start, max_overlap=max_overlap, format=format, **video
        )
    return write_split(task, split, out_dir, n, seed=seed, image_size=size, format=format)


__all__ = [
    "ALL_TASKS",
    "SPEC_FILE",
    "SPLITS",
    "TASKS",
    "VIDEO_TASKS",
    "full_spec",
    "make_sample",
    "write_split",
    "write_synthetic",
    "write_synthetic_split",
]
