"""Write samples out: mmrft JSONL with media files beside it, or parquet with the images embedded.

The parquet layout is the ``mmrft`` preset of :mod:`mmrft.data.columns`: ``id``, ``task``,
``messages`` (JSON text; image items carry no ``image`` value), ``images`` (a list of
``datasets.Image``: PNG/JPEG bytes, in the order of the image items), ``solution`` and every
other key of the sample as its own column. The schema carries the ``datasets`` features, so
``datasets.load_dataset("parquet", ...)`` decodes ``images`` as images. Rows are written in
row groups of :data:`ROW_GROUP_SIZE` (the ``datasets`` default for image data), which keeps
random access cheap (:class:`mmrft.data.sources.ParquetRows`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmrft.data.jsonl import map_media_paths
from mmrft.data.validate import decode_data_uri

ROW_GROUP_SIZE = 100


def _image_bytes(value: str) -> bytes:
    if value.startswith("data:"):
        return decode_data_uri(value)
    with open(value.removeprefix("file://"), "rb") as f:
        return f.read()


def parquet_row(sample: dict[str, Any]) -> dict[str, Any]:
    """``sample`` in the mmrft parquet layout: its images' bytes moved into ``images``."""
    images: list[dict] = []
    messages = json.loads(json.dumps(sample["messages"]))
    for message in messages:
        for item in message["content"] if isinstance(message["content"], list) else []:
            if item.get("type") == "image" and isinstance(item.get("image"), str):
                value = item.pop("image")
                name = None if value.startswith("data:") else os.path.basename(value)
                images.append({"bytes": _image_bytes(value), "path": name})
    row = {"id": str(sample["id"]), "task": sample["task"], "messages": json.dumps(messages), "images": images}
    row.update({k: v for k, v in sample.items() if k not in row})
    return row


class ParquetSink:
    """Writes rows to one parquet file; the schema is fixed by the first :data:`ROW_GROUP_SIZE` rows."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.writer = None
        self.schema = None
        self.pending: list[dict] = []
        self.count = 0

    def add(self, row: dict) -> None:
        self.pending.append(row)
        if len(self.pending) >= ROW_GROUP_SIZE:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending:
            return
        if self.writer is None:
            self.schema = _schema(self.pending)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.partial, self.schema)
        try:
            table = pa.Table.from_pylist(self.pending, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
            raise ValueError(f"{self.path}: rows {self.count}-{self.count + len(self.pending) - 1} do not fit the columns' types of the first rows ({err})") from None
        self.writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.count += len(self.pending)
        self.pending = []

    def close(self) -> Path:
        """Finish the file; it appears under its name only now."""
        self._flush()
        if self.writer is None:
            raise ValueError(f"{self.path}: no rows to write")
        self.writer.close()
        os.replace(self.partial, self.path)
        return self.path


def _schema(rows: list[dict]):
    """Arrow schema with ``datasets`` features: ``images`` a list of Image, the rest inferred."""
    import datasets
    import pyarrow as pa

    others = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "images"} for r in rows]).schema
    features = datasets.Features.from_arrow_schema(others)
    features["images"] = datasets.List(datasets.Image())
    order = ["id", "task", "messages", "images"] + [k for k in features if k not in ("id", "task", "messages", "images")]
    return datasets.Features({k: features[k] for k in order}).arrow_schema


def write_parquet(samples: Iterable[dict], path: str | Path) -> tuple[Path, int]:
    """Write ``samples`` (media paths absolute or data URIs) to ``path``; returns (path, rows)."""
    sink = ParquetSink(path)
    for sample in samples:
        sink.add(parquet_row(sample))
    return sink.close(), sink.count


def write_jsonl(samples: Iterable[dict], out_dir: str | Path, split: str) -> tuple[Path, int]:
    """Write ``out_dir/{split}.jsonl``, each local or embedded medium copied to ``out_dir/media/``
    (named by its content hash, so a medium shared by samples is stored once)."""
    out_dir = Path(out_dir)
    media = out_dir / "media"
    media.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{split}.jsonl"
    partial = path.with_name(path.name + ".partial")
    count = 0
    with open(partial, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(map_media_paths(sample, lambda value: _store(value, media, out_dir))) + "\n")
            count += 1
    os.replace(partial, path)
    return path, count


def _store(value: str, media: Path, out_dir: Path) -> str:
    if value.startswith(("http://", "https://")):
        return value
    if value.startswith("data:"):
        data = decode_data_uri(value)
        suffix = _image_suffix(data)
        target = media / f"{hashlib.sha1(data).hexdigest()[:16]}{suffix}"
        if not target.exists():
            target.write_bytes(data)
    else:
        source = Path(value.removeprefix("file://"))
        digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
        target = media / f"{source.stem}-{digest}{source.suffix}"
        if not target.exists():
            shutil.copyfile(source, target)
    return os.path.relpath(target, out_dir)


def _image_suffix(data: bytes) -> str:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return "." + (im.format or "png").lower().replace("jpeg", "jpg")
    except OSError:
        return ".bin"


__all__ = ["ParquetSink", "parquet_row", "write_jsonl", "write_parquet"]
