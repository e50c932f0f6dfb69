"""Write a generated split: one JSONL line per sample with its media file next to it, or a
parquet file with the images embedded (videos stay files beside it)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmrft.data.jsonl import MEDIA_TYPES

FORMATS = ("jsonl", "parquet")


def write_samples(
    out_dir: str | Path,
    split: str,
    n: int,
    make: Callable[[int], tuple[dict, Any]],
    save: Callable[[Any, Path], None],
    format: str = "jsonl",
) -> Path:
    """Write samples ``make(0) .. make(n - 1)`` to ``out_dir/{split}.jsonl`` (or ``.parquet``);
    each sample's media item (its one image or video, a path relative to the split's file) is
    written by ``save(media, path)``; under parquet an image's bytes go into the row instead.
    The file appears only once complete, so an interrupted run leaves none to be mistaken for data."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        return _write_parquet(out_dir, split, n, make, save)
    path = out_dir / f"{split}.jsonl"
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        for index in range(n):
            sample, media = make(index)
            _save_media(sample, media, out_dir, save)
            f.write(json.dumps(sample) + "\n")
    os.replace(partial, path)
    return path


def _save_media(sample: dict, media: Any, out_dir: Path, save: Callable[[Any, Path], None]) -> tuple[dict, Path]:
    item = next(c for c in sample["messages"][0]["content"] if c["type"] in MEDIA_TYPES)
    target = out_dir / item[item["type"]]
    target.parent.mkdir(parents=True, exist_ok=True)
    save(media, target)
    return item, target


def _write_parquet(out_dir: Path, split: str, n: int, make, save) -> Path:
    from mmrft.data.export import ParquetSink, parquet_row

    sink = ParquetSink(out_dir / f"{split}.parquet")
    emptied = set()
    for index in range(n):
        sample, media = make(index)
        item, target = _save_media(sample, media, out_dir, save)
        if item["type"] == "image":  # embedded: the file was only the encoder's way to its bytes
            item["image"] = str(target)
            row = parquet_row(sample)
            target.unlink()
            emptied.add(target.parent)
        else:
            row = parquet_row(sample)
        sink.add(row)
    for folder in emptied:
        if not any(folder.iterdir()):
            folder.rmdir()
    return sink.close()
