"""`mmrft rewards list | score NAME`: inspect rewards and score completions from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mmrft.rewards import get_reward, list_rewards


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `rewards` command (with `list` and `score`) to a subparsers object."""
    parser = subparsers.add_parser("rewards", help="list rewards or score completions with one")
    parser.set_defaults(func=run)
    commands = parser.add_subparsers(dest="rewards_command", required=True)
    commands.add_parser("list", help="print each registered reward: name, range, description")
    score = commands.add_parser(
        "score",
        help="score completions; prints one JSON line per completion",
        description="Score completions with a reward (a registered name, path/to/file.py:function or entry point).",
    )
    score.add_argument("name", help="reward name, 'path/to/file.py:function' or an entry point name")
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument("--completion", action="append", metavar="TEXT", help="a completion (repeatable)")
    source.add_argument(
        "--file", metavar="JSONL", help='lines {"completion": ..., "solution": ..., other columns}'
    )
    score.add_argument("--solution", type=_json, metavar="JSON", help="ground truth for every completion")
    score.add_argument(
        "--column", action="append", default=[], type=_column, metavar="KEY=JSON",
        help="a column for every completion, e.g. image_size=[640,480] (repeatable)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the `rewards` subcommand selected in `args`; returns the exit code."""
    if args.rewards_command == "list":
        for spec in list_rewards():
            print(f"{spec.name}\t[{spec.range[0]:g}, {spec.range[1]:g}]\t{spec.description}")
        return 0
    rows = _rows(args)
    defaults = dict(args.column)
    if args.solution is not None:
        defaults["solution"] = args.solution
    keys = {key for row in rows for key in row if key != "completion"} | defaults.keys()
    columns = {key: [row.get(key, defaults.get(key)) for row in rows] for key in sorted(keys)}
    completions = [row["completion"] for row in rows]
    scores = get_reward(args.name)(completions, **columns)
    for completion, score in zip(completions, scores, strict=True):
        print(json.dumps({"completion": completion, "score": score}, ensure_ascii=False))
    return 0


def _rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.completion is not None:
        return [{"completion": text} for text in args.completion]
    rows = []
    with open(args.file, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or "completion" not in row:
                raise SystemExit(f"{args.file}:{number}: expected an object with a 'completion' key")
            rows.append(row)
    return rows


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} ({e})") from None


def _column(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=JSON, got {text!r}")
    return key, _json(value)
