"""``mmrft select CONFIG --out FILE``: keep the training prompts the model finds hard but solvable."""

from __future__ import annotations

import argparse
import json

from mmrft.config import TrainConfig, load_config


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "select", help="offline difficulty selection: keep training prompts by the model's pass rate"
    )
    parser.add_argument("config", help="training YAML: its model, task rewards, generation and data.train are used")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides of the config")
    parser.add_argument("--out", required=True, help="JSONL to write (media paths made relative to it)")
    parser.add_argument("--samples", type=int, default=8, help="completions sampled per prompt (K)")
    parser.add_argument("--threshold", type=float, default=0.5, help="task reward that counts as a pass")
    parser.add_argument("--min-pass", type=float, default=0.0, help="lowest pass rate kept")
    parser.add_argument("--max-pass", type=float, default=1.0, help="highest pass rate kept")
    parser.add_argument("--limit", type=int, help="look at the first N training samples only")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mmrft.training.selection import select_by_pass_rate

    config = load_config(TrainConfig, args.config, args.overrides)
    counts = select_by_pass_rate(
        config, args.out, args.samples, args.threshold, args.min_pass, args.max_pass, args.limit
    )
    print(json.dumps(counts))
    print(f"kept {counts['kept']} of {counts['seen']} prompts ({counts['skipped']} broken skipped) -> {args.out}")
    return 0
