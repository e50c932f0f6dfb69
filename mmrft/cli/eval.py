"""``mmrft eval --model DIR --data SPLIT.jsonl --output-dir DIR``: greedy evaluation, eval.json + samples.jsonl."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmrft.config import ModelConfig, VideoConfig
from mmrft.data.jsonl import JsonlDataset
from mmrft.eval.evaluate import evaluate
from mmrft.policies.loading import load_policy


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("eval", help="evaluate a model on a JSONL split")
    parser.add_argument("--model", required=True, help="model directory, hub id or tiny:<arch>")
    parser.add_argument("--data", required=True, help="JSONL split to evaluate")
    parser.add_argument("--output-dir", required=True, help="where eval.json and samples.jsonl are written")
    parser.add_argument("--benchmark", help="benchmark name in eval.json (default: the data file's name)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    parser.add_argument("--coord-convention", help="override the model's box convention")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--frame-schedule", type=int, nargs="+",
        help="video test-time frame scaling: frame counts to try in turn (e.g. 4 8 16); writes frame_scaling.json",
    )
    parser.add_argument("--votes", type=int, default=4, help="answers sampled per frame count under --frame-schedule")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not Path(args.data).is_file():
        raise FileNotFoundError(f"data file not found: {args.data}")
    policy = load_policy(ModelConfig(name_or_path=args.model, coord_convention=args.coord_convention), VideoConfig())
    policy.model.eval()
    result = evaluate(policy, JsonlDataset(args.data), args.limit, args.batch_size, args.max_new_tokens)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = result.as_json(args.benchmark or Path(args.data).stem, args.model)
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    with open(out / "samples.jsonl", "w") as f:
        for row in result.samples:
            f.write(json.dumps(row) + "\n")
    if args.frame_schedule:
        from mmrft.eval.frame_scaling import frame_scaling_eval

        data = JsonlDataset(args.data)
        samples = [data[i] for i in range(len(data) if args.limit is None else min(args.limit, len(data)))]
        scaling = frame_scaling_eval(policy, samples, tuple(args.frame_schedule), args.votes, max_new_tokens=args.max_new_tokens)
        (out / "frame_scaling.json").write_text(json.dumps(scaling.as_json(), indent=2))
        print(f"frame scaling: {scaling.as_json()}")
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
    print(f"{report['benchmark']}: n={result.n} {metrics} failures={result.failures}")
    print(f"wrote {out / 'eval.json'}")
    return 0
