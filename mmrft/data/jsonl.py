"""Lazy access to a JSONL file of samples: one index pass, then one line read per item."""

import json
import os
from array import array
from pathlib import Path
from typing import Any

from mmrft.data.errors import SampleError

MEDIA_TYPES = ("image", "video")
_NON_LOCAL_PREFIXES = ("http://", "https://", "file://", "data:")


def map_media_paths(sample: dict[str, Any], fn) -> dict[str, Any]:
    """Apply `fn` to every image/video path string in `sample["messages"]`, in place.

    A video given as a list of frame paths has `fn` applied to each frame.
    """
    messages = sample.get("messages")
    if not isinstance(messages, list):
        return sample
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for item in content:
            if not isinstance(item, dict) or item.get("type") not in MEDIA_TYPES:
                continue
            key = item["type"]
            value = item.get(key)
            if isinstance(value, str):
                item[key] = fn(value)
            elif isinstance(value, list):
                item[key] = [fn(v) if isinstance(v, str) else v for v in value]
    return sample


def resolve_media_paths(sample: dict[str, Any], base_dir: str | os.PathLike) -> dict[str, Any]:
    """Make every relative image/video path in `sample["messages"]` absolute, in place.

    Paths that are absolute, URLs (`http(s)://`, `file://`) or `data:` URIs are left alone.
    """
    return map_media_paths(sample, lambda path: _resolve(path, base_dir))


def relative_media_paths(sample: dict[str, Any], base_dir: str | os.PathLike) -> dict[str, Any]:
    """Rewrite absolute local media paths relative to `base_dir` (for writing a JSONL there), in place."""
    return map_media_paths(sample, lambda p: os.path.relpath(p, base_dir) if os.path.isabs(p) else p)


def _resolve(path: str, base_dir: str | os.PathLike) -> str:
    if os.path.isabs(path) or path.startswith(_NON_LOCAL_PREFIXES):
        return path
    return os.path.normpath(os.path.join(base_dir, path))


class JsonlDataset:
    """Samples of a JSONL file, parsed on access.

    Construction records the byte offset of each non-blank line and keeps nothing else, so
    memory stays small for large files. `dataset[i]` parses line i and resolves its media
    paths against the JSONL file's directory. A line that is not a JSON object raises
    `SampleError` when accessed, naming `file:line`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).resolve()
        self._offsets = array("q")
        self._line_numbers = array("q")
        offset = 0
        with open(self.path, "rb") as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    self._offsets.append(offset)
                    self._line_numbers.append(line_number)
                offset += len(line)

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return resolve_media_paths(self.raw(index), self.path.parent)

    def raw(self, index: int) -> dict[str, Any]:
        """Line ``index`` parsed, media paths as written."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples in {self.path}")
        index %= len(self)
        with open(self.path, "rb") as f:
            f.seek(self._offsets[index])
            line = f.readline()
        where = f"{self.path.name}:{self._line_numbers[index]}"
        try:
            sample = json.loads(line)
        except ValueError as e:
            raise SampleError(where, f"invalid JSON: {e}") from e
        if not isinstance(sample, dict):
            raise SampleError(where, f"expected a JSON object, got {type(sample).__name__}")
        return sample
