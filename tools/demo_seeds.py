"""Run a demo's RFT stage for several seeds, plus the equal-compute SFT baseline, and tabulate.

    python tools/demo_seeds.py --seeds 0 1 2 --parallel 2                  # image grounding
    python tools/demo_seeds.py --task temporal_grounding --out runs/video_seeds

Each run is `mmrft train` with its own output directory under runs/seeds/. Runs started in
parallel get one CPU thread each (OMP_NUM_THREADS=1), and so does the SFT baseline, which is
queued when the first RFT run finishes and trains for that run's wall time, so the
equal-wall-time comparison is like for like. Prints a markdown table and writes
runs/seeds/table.json (per run: steps, training minutes, held-out start and final metrics, and
the same on the training split).
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from mmrft.config import is_override, load_train_config
from mmrft.training.trainer import prepare_data

ROOT = Path(__file__).resolve().parents[1]
TASKS = {  # RFT config, equal-time SFT config, the two held-out metrics tabulated
    "grounding": ("configs/demo_grounding_grpo.yaml", "configs/demo_grounding_sft_baseline.yaml", ("acc@0.5", "mean_iou")),
    "temporal_grounding": (
        "configs/demo_temporal_grounding_grpo.yaml", "configs/demo_temporal_grounding_sft_baseline.yaml", ("r1@0.5", "miou")
    ),
}


def run(name: str, config: str, seed: int, extra: list[str], out_root: Path) -> dict:
    out = out_root / name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mmrft", "train", config, f"--seed={seed}", f"--output-dir={out}", "--resume", "progress_bar=false", *extra]
    with open(out_root / f"{name}.log", "a") as log:  # --resume: a rerun continues an interrupted run
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "summary.json").read_text())


def prepare_once(configs: list[str], extra: list[str]) -> None:
    """Generate the configs' missing synthetic data here, before runs in parallel would each write it."""
    os.chdir(ROOT)
    for config in configs:
        prepare_data(load_train_config(config, [e for e in extra if is_override(e)]))


def training_minutes(run_dir: Path) -> float:
    """Training wall time of a run (time/elapsed_s of its last logged step), in minutes."""
    last = (run_dir / "metrics.jsonl").read_text().splitlines()[-1]
    return json.loads(last)["time/elapsed_s"] / 60


def metric_mean(run_dir: Path, key: str) -> float | None:
    """Mean of ``key`` over a run's logged steps (None where no step logged it)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def split_metrics(summary: dict, split: str) -> dict:
    """A summary's start and final metrics on one split."""
    return {"start": summary["start"][split]["metrics"], "final": summary["final"][split]["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="grounding")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--minutes", type=float,
        help="the SFT baseline's training wall time (default: that of the first RFT run to finish; RFT runs keep their config's limits)",
    )
    parser.add_argument("--out", default="runs/seeds")
    parser.add_argument("--no-baseline", action="store_true")
    args, extra = parser.parse_known_args()
    out_root = ROOT / args.out
    out_root.mkdir(parents=True, exist_ok=True)
    rft_config, sft_config, (first, second) = TASKS[args.task]
    prepare_once([rft_config, sft_config], extra)
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = {f"demo_seed{s}": pool.submit(run, f"demo_seed{s}", rft_config, s, extra, out_root) for s in args.seeds}
        if not args.no_baseline:  # queued once an RFT run has finished, with its training time (equal compute)
            done = next(as_completed(futures.values()))
            name = next(n for n, f in futures.items() if f is done)
            minutes = args.minutes or training_minutes(out_root / name)
            futures["sft_equal_time"] = pool.submit(
                run, "sft_equal_time", sft_config, args.seeds[0], [f"max_minutes={minutes:.2f}", *extra], out_root
            )
        results = {name: f.result() for name, f in futures.items()}
    rows = [f"| run | steps | held-out {first} start → final | held-out {second} start → final |", "|---|---|---|---|"]
    table = {}
    for name, summary in results.items():
        start, final = summary["start"]["heldout"]["metrics"], summary["final"]["heldout"]["metrics"]
        table[name] = {
            "steps": summary["steps"], "minutes": training_minutes(out_root / name), "start": start, "final": final,
            "train": split_metrics(summary, "train"),
        }
        cells = [f"{start[k]:.3f} → {final[k]:.3f} ({final[k] - start[k]:+.3f})" for k in (first, second)]
        rows.append(f"| {name} | {summary['steps']} | {cells[0]} | {cells[1]} |")
    (out_root / "table.json").write_text(json.dumps(table, indent=2))
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
