"""Open ``data.train`` / ``data.heldout``: mmrft JSONL, or a Hugging Face dataset read in place.

A source is one of

- an mmrft JSONL file (today's :class:`~mmrft.data.jsonl.JsonlDataset`);
- a JSONL file in another layout (VLM-R1's), indexed by line offsets like mmrft's;
- a parquet file, or a folder of them (searched recursively, sorted by path): rows are read one
  row group at a time from the memory-mapped file, so opening costs the footer only;
- an ``.arrow`` file, a ``save_to_disk`` / ``load_from_disk`` folder, or a ``.json`` file:
  through ``datasets`` (memory-mapped Arrow; a JSON file is converted to the Arrow cache once);
- ``hf:org/name:split`` (split defaults to train): ``datasets.load_dataset(org/name, split=...)``,
  which downloads into the Hugging Face cache and memory-maps it. ``hf:/a/local/folder:split``
  takes the same path for a folder in the hub's layout.

Non-mmrft rows become samples through :class:`~mmrft.data.columns.ColumnMap` (``data.columns``),
converted when a row is read; nothing holds the whole dataset in memory.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from mmrft.data.columns import ColumnMap
from mmrft.data.jsonl import JsonlDataset

HUB_PREFIX = "hf:"
MMRFT_KEYS = {"id", "messages", "solution", "task"}
_ROW_GROUPS_KEPT = 2


class ParquetRows:
    """Random access to the rows of parquet files; at most two row groups decoded at a time."""

    def __init__(self, files: list[Path]) -> None:
        import pyarrow.parquet as pq

        if not files:
            raise FileNotFoundError("no parquet files")
        self.files = [pq.ParquetFile(f, memory_map=True) for f in files]
        self.column_names = list(self.files[0].schema_arrow.names)
        self._groups: list[tuple[int, int]] = []
        self._starts: list[int] = []
        total = 0
        for f, parquet in enumerate(self.files):
            for g in range(parquet.metadata.num_row_groups):
                self._groups.append((f, g))
                self._starts.append(total)
                total += parquet.metadata.row_group(g).num_rows
        self._len = total
        self._cache: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return self._len

    def row(self, index: int) -> dict[str, Any]:
        group = bisect.bisect_right(self._starts, index) - 1
        table = self._cache.get(group)
        if table is None:
            f, g = self._groups[group]
            table = self.files[f].read_row_group(g)
            self._cache[group] = table
            if len(self._cache) > _ROW_GROUPS_KEPT:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(group)
        return table.slice(index - self._starts[group], 1).to_pylist()[0]


class ArrowRows:
    """Rows of a memory-mapped ``datasets.Dataset``, as stored (images stay undecoded bytes)."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset.with_format("arrow")
        self.column_names = list(dataset.column_names)

    def __len__(self) -> int:
        return len(self.dataset)

    def row(self, index: int) -> dict[str, Any]:
        return self.dataset[index].to_pylist()[0]


class JsonlRows:
    """Rows of a JSONL file in any layout: one offset pass, then one line read per row."""

    def __init__(self, path: Path) -> None:
        self.lines = JsonlDataset(path)
        first = _first_json_line(path)
        self.column_names = list(first) if isinstance(first, dict) else []

    def __len__(self) -> int:
        return len(self.lines)

    def row(self, index: int) -> dict[str, Any]:
        return self.lines.raw(index)


class RowDataset:
    """Samples of a table-like source: ``dataset[i]`` reads row i and converts it (:class:`ColumnMap`)."""

    def __init__(self, rows, columns: ColumnMap, source: str) -> None:
        self.rows = rows
        self.columns = columns
        self.source = source

    @property
    def column_names(self) -> list[str]:
        return self.rows.column_names

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rows in {self.source}")
        index %= len(self)
        return self.columns.to_sample(self.rows.row(index), index)


def is_hub_source(source: str) -> bool:
    return str(source).startswith(HUB_PREFIX)


def source_exists(source: str) -> bool:
    """Whether a local source is there (hub ids are checked when loaded)."""
    return is_hub_source(source) or Path(source).exists()


def open_rows(source: str | os.PathLike):
    """The raw rows of ``source`` and the directory its relative media paths are relative to."""
    source = str(source)
    if is_hub_source(source):
        name, _, split = source[len(HUB_PREFIX):].rpartition(":")
        if not name or "/" in split:
            name, split = source[len(HUB_PREFIX):], "train"
        import datasets

        dataset = datasets.load_dataset(name, split=split)
        base = name if Path(name).is_dir() else os.getcwd()
        return ArrowRows(dataset), Path(base)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {source}")
    if path.is_dir():
        return _open_folder(path), path
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetRows([path]), path.parent
    if suffix == ".jsonl":
        return JsonlRows(path), path.parent
    if suffix == ".arrow":
        import datasets

        return ArrowRows(datasets.Dataset.from_file(str(path))), path.parent
    if suffix == ".json":
        import datasets

        return ArrowRows(datasets.load_dataset("json", data_files=str(path), split="train")), path.parent
    raise ValueError(f"{source}: not a dataset file (.jsonl, .parquet, .arrow, .json), folder or hf:org/name:split")


def _open_folder(path: Path):
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        raise ValueError(f"{path} holds a DatasetDict: name one split's folder, e.g. {path / (splits[0] if splits else 'train')}")
    if (path / "state.json").is_file():
        import datasets

        return ArrowRows(datasets.load_from_disk(str(path)))
    parquet = sorted(path.rglob("*.parquet"))
    if parquet:
        return ParquetRows(parquet)
    arrow = sorted(path.rglob("*.arrow"))
    if arrow:
        import datasets

        return ArrowRows(datasets.concatenate_datasets([datasets.Dataset.from_file(str(f)) for f in arrow]))
    raise FileNotFoundError(f"{path}: no parquet or arrow files and no load_from_disk dataset in it")


def _first_json_line(path: Path) -> Any:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                try:
                    return json.loads(line)
                except ValueError:
                    return None
    return None


def open_dataset(source: str | os.PathLike, columns: dict | None = None):
    """The samples of ``source`` (see the module docstring), indexable and sized.

    An mmrft-layout JSONL with no ``columns`` is a :class:`JsonlDataset` as before; anything
    else is a :class:`RowDataset` converting rows by ``columns`` (``data.columns``).
    """
    source = str(source)
    if not is_hub_source(source) and source.lower().endswith(".jsonl") and not columns and Path(source).is_file():
        first = _first_json_line(Path(source))
        if not isinstance(first, dict) or MMRFT_KEYS <= first.keys():
            return JsonlDataset(source)
    rows, base = open_rows(source)
    name = Path(source.removeprefix(HUB_PREFIX).split(":")[0]).stem or "data"
    return RowDataset(rows, ColumnMap.from_config(columns, rows.column_names, base, name), source)


def open_config_data(data) -> tuple[Any, Any]:
    """(training set, held-out set or None) of a ``DataConfig``; a missing source or a layout that
    fits no preset is a ConfigError naming the key."""
    from mmrft.config import ConfigError
    from mmrft.data.columns import LayoutError

    opened = []
    for key in ("train", "heldout"):
        source = getattr(data, key)
        if not source:
            opened.append(None)
            continue
        if not source_exists(source):
            raise ConfigError(f"data.{key}: no such file: {source}")
        try:
            opened.append(open_dataset(source, getattr(data, "columns", None)))
        except LayoutError as err:
            raise ConfigError(f"data.{key}: {err}") from None
    return opened[0], opened[1]
