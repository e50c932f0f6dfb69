"""Write a generated split: one JSONL line per sample, its media file next to it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmrft.data.jsonl import MEDIA_TYPES


def write_samples(
    out_dir: str | Path, split: str, n: int, make: Callable[[int], tuple[dict, Any]], save: Callable[[Any, Path], None]
) -> Path:
    """Write samples ``make(0) .. make(n - 1)`` to ``out_dir/{split}.jsonl``; each sample's
    media item (its one image or video, a path relative to the JSONL) is written by ``save(media, path)``.
    The JSONL appears only once complete, so an interrupted run leaves none to be mistaken for data."""
    out_dir = Path(out_dir)
    path = out_dir / f"{split}.jsonl"
    partial = path.with_name(path.name + ".partial")
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(partial, "w", encoding="utf-8") as f:
        for index in range(n):
            sample, media = make(index)
            item = next(c for c in sample["messages"][0]["content"] if c["type"] in MEDIA_TYPES)
            target = out_dir / item[item["type"]]
            target.parent.mkdir(parents=True, exist_ok=True)
            save(media, target)
            f.write(json.dumps(sample) + "\n")
    os.replace(partial, path)
    return path
