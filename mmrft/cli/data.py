"""``mmrft data inspect SOURCE`` and ``mmrft data convert SOURCE --out DIR``: look at a dataset
the way training will read it, and write it as mmrft JSONL + media or parquet with embedded images."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from typing import Any

SHOWN_SAMPLES = 3


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("data", help="inspect or convert a dataset (JSONL, parquet, arrow, hf:org/name:split)")
    parser.set_defaults(func=run)
    commands = parser.add_subparsers(dest="data_command", required=True)
    inspect = commands.add_parser(
        "inspect", help="columns, matching preset, three converted samples, rows that fail validation",
        description="Show how training reads SOURCE: its columns, the preset they fit, three samples as "
        "mmrft sees them, and how many rows fail validation and why.",
    )
    convert = commands.add_parser(
        "convert", help="write SOURCE as mmrft JSONL + media files, or parquet with the images embedded",
        description="Convert SOURCE to mmrft's layout; rows that fail conversion or validation are left out and counted.",
    )
    for command in (inspect, convert):
        command.add_argument("source", help="JSONL / parquet / arrow / JSON file or folder, a save_to_disk folder, or hf:org/name:split")
        add_column_flags(command)
        command.add_argument("--limit", type=int, help="read only the first N rows")
    inspect.add_argument("--samples", type=int, default=SHOWN_SAMPLES, help="converted samples shown")
    convert.add_argument("--out", required=True, help="output directory")
    convert.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="jsonl + media files, or parquet with images embedded")
    convert.add_argument("--split", default="train", help="output file name: OUT/SPLIT.jsonl or OUT/SPLIT.parquet")
    return parser


def add_column_flags(parser: argparse.ArgumentParser) -> None:
    """--preset, --task, --column: ``data.columns`` on the command line (read by :func:`columns_spec`)."""
    parser.add_argument("--preset", help="column layout: trl, easyr1, vlm_r1, mmrft (default: the one the columns fit)")
    parser.add_argument("--task", help="task of rows without a task column (grounding, vqa, counting, ...)")
    parser.add_argument(
        "--column", action="append", default=[], metavar="ROLE=NAME",
        help="take ROLE (prompt, problem, conversations, messages, images, videos, solution, id, task) from column NAME (repeatable)",
    )


def columns_spec(args: argparse.Namespace) -> dict | None:
    """``data.columns`` from the command line flags (None when none is given)."""
    spec: dict[str, Any] = {}
    if args.preset:
        spec["preset"] = args.preset
    if args.task:
        spec["task"] = args.task
    for item in args.column:
        role, sep, name = item.partition("=")
        if not sep or not role or not name:
            raise KeyError(f"--column: expected ROLE=NAME, got {item!r}")
        spec[role] = name
    return spec or None


def run(args: argparse.Namespace) -> int:
    from mmrft.data.columns import LayoutError
    from mmrft.data.sources import open_dataset

    try:
        dataset = open_dataset(args.source, columns_spec(args))
    except LayoutError as err:
        raise KeyError(str(err)) from None
    if args.data_command == "inspect":
        return inspect(args, dataset)
    return convert(args, dataset)


def inspect(args: argparse.Namespace, dataset) -> int:
    from mmrft.data.columns import matching_presets
    from mmrft.data.errors import SampleError
    from mmrft.data.validate import check_sample

    n = len(dataset)
    print(f"source: {args.source} ({n} rows)")
    mapping = getattr(dataset, "columns", None)
    if mapping is None:
        print("layout: mmrft JSONL (id, messages, solution, task)")
    else:
        print(f"columns: {', '.join(dataset.column_names)}")
        fits = matching_presets(dataset.column_names)
        print(f"preset: {mapping.preset}  (presets the columns fit: {', '.join(fits) or 'none'})")
        roles = ", ".join(f"{role} <- {column}" for role, column in mapping.columns.items())
        extra = f"; task: {mapping.task}" if mapping.task else ""
        print(f"roles: {roles}{extra}")
        if mapping.passthrough:
            print(f"passed through: {', '.join(mapping.passthrough)}")
    checked = n if args.limit is None else min(args.limit, n)
    failures: Counter[str] = Counter()
    examples: dict[str, str] = {}  # reason -> the first failing row and the rest of its message
    shown = 0
    for i in range(checked):
        try:
            sample = dataset[i]
            check_sample(sample)
        except SampleError as err:
            reason = err.reason.split(":")[0]
            failures[reason] += 1
            detail = err.reason[len(reason):].lstrip(": ")
            examples.setdefault(reason, err.sample_id + (f": {detail}" if detail else ""))
            continue
        if shown < args.samples:
            print(f"\nsample {i}:\n{show_sample(sample)}")
            shown += 1
    ok = checked - sum(failures.values())
    print(f"\nvalidation: {ok} of {checked} rows checked are valid" + (f" ({n} rows in all)" if checked < n else ""))
    for reason, count in failures.most_common():
        print(f"  {count} x {reason}  (first: {examples[reason]})")
    return 0


def convert(args: argparse.Namespace, dataset) -> int:
    from pathlib import Path

    from mmrft.data.errors import SampleError
    from mmrft.data.export import write_jsonl, write_parquet
    from mmrft.data.validate import check_sample

    failures: Counter[str] = Counter()
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))

    def valid():
        for i in range(n):
            try:
                sample = dataset[i]
                check_sample(sample)
            except SampleError as err:
                failures[err.reason.split(":")[0]] += 1
                continue
            yield sample

    out = Path(args.out)
    if args.format == "parquet":
        path, count = write_parquet(valid(), out / f"{args.split}.parquet")
    else:
        path, count = write_jsonl(valid(), out, args.split)
    print(f"wrote {count} samples to {path}; skipped {sum(failures.values())} invalid rows")
    for reason, number in failures.most_common():
        print(f"  {number} x {reason}")
    return 0


def show_sample(sample: dict, width: int = 160) -> str:
    """A few lines: id and task, each message with its media abbreviated, then the other keys as JSON."""
    lines = [f"  id: {sample.get('id')}   task: {sample.get('task')}"]
    for message in sample.get("messages") or []:
        content = message.get("content")
        parts = [content] if isinstance(content, str) else [
            item.get("text", "") if item.get("type") == "text" else f"<{item.get('type')}: {_abbreviated(item.get(item.get('type')))}>"
            for item in content
        ]
        lines.append(f"  {message.get('role')}: {' '.join(parts)}")
    for key, value in sample.items():
        if key not in ("id", "task", "messages"):
            text = json.dumps(_abbreviated(value), ensure_ascii=False)
            lines.append(f"  {key}: {text if len(text) <= width else text[: width - 3] + '...'}")
    return "\n".join(lines)


_DATA_URI = re.compile(r"^data:([^;,]*)[^,]*,(.*)$", re.S)


def _abbreviated(value: Any) -> Any:
    """``value`` with embedded media shown as their size instead of their base64 text."""
    if isinstance(value, dict):
        return {k: _abbreviated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_abbreviated(v) for v in value]
    if isinstance(value, str) and value.startswith("data:"):
        match = _DATA_URI.match(value)
        payload = match.group(2) if match else value
        size = len(payload) * 3 // 4 - payload[-2:].count("=")  # base64: 3 bytes per 4 characters, less the padding
        return f"embedded, {size} bytes"
    return value
