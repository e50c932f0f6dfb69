"""``mmrft eval --model DIR [DIR ...] --data SPLIT.jsonl --output-dir DIR``: greedy evaluation,
eval.json + samples.jsonl per model, resumable, with a comparison table for several models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmrft.cli.data import add_column_flags, columns_spec
from mmrft.config import ModelConfig, VideoConfig
from mmrft.eval.report import comparison_table


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("eval", help="evaluate one or more models on a data split (JSONL, parquet, hf:...)")
    parser.add_argument("--model", required=True, nargs="+", help="model directories, hub ids or tiny:<arch> (several: one subdirectory each)")
    parser.add_argument(
        "--data", required=True, nargs="+",
        help="split to evaluate (JSONL, parquet, arrow, a folder or hf:org/name:split); or, with a registered --benchmark, its files as key=path "
        "(e.g. refcoco: refs=refs.json instances=instances.json images=DIR split=val)",
    )
    parser.add_argument("--output-dir", required=True, help="where eval.json and samples.jsonl are written")
    add_column_flags(parser)  # how a dataset's rows become samples (as data.columns)
    parser.add_argument(
        "--benchmark",
        help="a registered benchmark (refcoco, screenspot, screenspot_pro, vqav2, ...) whose published files --data names; "
        "driving: closed-loop episodes of an action-policy checkpoint (--data split=heldout episodes=200); "
        "otherwise just the name written in eval.json (default: the data file's name)",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    parser.add_argument("--coord-convention", help="override the model's box convention")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--backend", choices=("hf", "vllm"), default="hf",
        help="hf: mmrft's own greedy decoding; vllm: a vLLM engine (extra mmrft[vllm], a GPU), same prompts and scoring",
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.5, help="vLLM's share of GPU memory (--backend vllm)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted eval: keep the samples already in samples.jsonl")
    parser.add_argument(
        "--frame-schedule", type=int, nargs="+",
        help="video test-time frame scaling: frame counts to try in turn (e.g. 4 8 16); writes frame_scaling.json",
    )
    parser.add_argument("--votes", type=int, default=4, help="answers sampled per frame count under --frame-schedule")
    parser.set_defaults(func=run)
    return parser


def _finished_rows(path: Path) -> dict[int, dict]:
    """Rows of an interrupted run's samples.jsonl by sample index (a line torn by a kill is dropped)."""
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                rows[int(row["index"])] = row
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def evaluate_model(args: argparse.Namespace, model: str, out: Path, data) -> dict:
    from mmrft.eval.evaluate import evaluate
    from mmrft.policies.loading import load_policy, resolve_model

    policy = load_policy(ModelConfig(name_or_path=model, coord_convention=args.coord_convention), VideoConfig())
    policy.model.eval()
    out.mkdir(parents=True, exist_ok=True)
    samples_path = out / "samples.jsonl"
    done = _finished_rows(samples_path) if args.resume else {}
    with open(samples_path, "w") as f:  # rewrite the kept rows cleanly, then append as batches finish
        for index in sorted(done):
            f.write(json.dumps(done[index]) + "\n")

    def append(rows: list[dict]) -> None:
        with open(samples_path, "a") as f:
            f.write("".join(json.dumps(row) + "\n" for row in rows))

    sampler = None
    if args.backend == "vllm":
        from mmrft.policies.vllm_engine import VLLMSampler

        sampler = VLLMSampler(policy, resolve_model(model), args.gpu_memory_utilization, sleep=False)
    result = evaluate(
        policy, data, args.limit, args.batch_size, args.max_new_tokens, done=done, on_rows=append, progress=True, sampler=sampler
    )
    samples_path.write_text("".join(json.dumps(row) + "\n" for row in result.samples))  # in index order
    report = result.as_json(args.benchmark or Path(args.data[0]).stem, model)
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    if args.frame_schedule:
        from mmrft.eval.frame_scaling import frame_scaling_eval

        samples = [data[i] for i in range(len(data) if args.limit is None else min(args.limit, len(data)))]
        scaling = frame_scaling_eval(policy, samples, tuple(args.frame_schedule), args.votes, max_new_tokens=args.max_new_tokens)
        (out / "frame_scaling.json").write_text(json.dumps(scaling.as_json(), indent=2))
        print(f"frame scaling: {scaling.as_json()}")
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
    print(f"{report['benchmark']} [{model}]: n={result.n} {metrics} failures={result.failures}")
    print(f"wrote {out / 'eval.json'}")
    return report


def load_data(args: argparse.Namespace):
    """The samples to evaluate: a data source (JSONL, parquet, ..., hf:org/name:split), or a registered benchmark's published files."""
    from mmrft.data.sources import open_dataset
    from mmrft.eval.benchmarks import BENCHMARKS

    if args.benchmark in BENCHMARKS.names():
        files = dict(item.split("=", 1) for item in args.data if "=" in item)
        for key, path in files.items():
            if key != "split" and not Path(path).exists():
                raise FileNotFoundError(f"{args.benchmark} {key}: not found: {path}")
        try:
            return list(BENCHMARKS.get(args.benchmark)(**files))
        except TypeError as err:
            raise KeyError(f"--data for {args.benchmark}: {err}") from None
    from mmrft.data.columns import LayoutError

    try:
        return open_dataset(args.data[0], columns_spec(args))
    except LayoutError as err:
        raise KeyError(f"--data: {err}") from None


def run_driving(args: argparse.Namespace) -> int:
    """`--benchmark driving --data split=heldout episodes=200`: closed-loop episodes in the simulator."""
    from mmrft.eval.closed_loop import driving_benchmark

    options = dict(item.split("=", 1) for item in args.data if "=" in item)
    unknown = set(options) - {"split", "episodes", "seed"}
    if unknown:
        raise KeyError(f"--data for driving: unknown key {sorted(unknown)[0]!r}; valid: split, episodes, seed")
    episodes = int(options.get("episodes", args.limit or 200))
    reports = {}
    for model in args.model:
        out = Path(args.output_dir) / (Path(model).name if len(args.model) > 1 else "")
        out.mkdir(parents=True, exist_ok=True)
        report, rows = driving_benchmark(model, options.get("split", "heldout"), episodes, int(options.get("seed", 0)))
        (out / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        (out / "eval.json").write_text(json.dumps(report, indent=2))
        print(f"driving [{model}]: n={episodes} " + ", ".join(f"{k}={v:.4f}" for k, v in report["metrics"].items()))
        reports[Path(model).name] = report
    if len(reports) > 1:
        (Path(args.output_dir) / "comparison.md").write_text(comparison_table(reports) + "\n")
        print("\n" + comparison_table(reports))
    return 0


def run(args: argparse.Namespace) -> int:
    from mmrft.data.sources import source_exists
    from mmrft.eval.benchmarks import BENCHMARKS

    if args.benchmark == "driving":
        return run_driving(args)
    if args.benchmark not in BENCHMARKS.names() and not source_exists(args.data[0]):
        raise FileNotFoundError(f"data file not found: {args.data[0]}")
    root = Path(args.output_dir)
    data = load_data(args)  # before any model is loaded: a missing file fails fast
    if len(args.model) == 1:
        evaluate_model(args, args.model[0], root, data)
        return 0
    names = [Path(m).name or m for m in args.model]
    if len(set(names)) != len(names):
        names = [f"{i}-{name}" for i, name in enumerate(names)]
    reports = {name: evaluate_model(args, model, root / name, data) for name, model in zip(names, args.model, strict=True)}
    table = comparison_table(reports)
    (root / "comparison.md").write_text(table + "\n")
    print("\n" + table)
    return 0
