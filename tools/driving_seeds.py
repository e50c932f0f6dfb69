"""The driving recipe end to end, and the table of behaviour cloning against GRPO over seeds.

    python tools/driving_seeds.py --seeds 0 1 2 --parallel 2
    python tools/driving_seeds.py --table-only          # re-read finished runs

Runs `mmrft train` on configs/driving_world_model.yaml and configs/driving_bc_gaussian.yaml
(unless their runs exist), then configs/driving_grpo_gaussian.yaml once per seed (one CPU thread
each, `--parallel` at a time) into runs/driving_seeds/grpo_seed{s}. Every GRPO run evaluates its
starting (BC) policy and its final policy closed-loop in the ground-truth simulator on the same 200
held-out initial states. Prints a markdown table (collision and success per seed, relative
collision change) and writes runs/driving_seeds/table.json. Extra arguments are passed on to
every GRPO run as config overrides (e.g. max_steps=200).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = (("configs/driving_world_model.yaml", "runs/driving_world_model"), ("configs/driving_bc_gaussian.yaml", "runs/driving_bc_gaussian"))


def train(config: str, out: Path, extra: list[str], run: bool = True) -> dict:
    """The run's summary.json, training it first if it has none (and `run`)."""
    if run and not (out / "summary.json").is_file():
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(out.with_suffix(".log"), "w") as log:
            cmd = ["mmrft", "train", config, f"--output-dir={out}", *extra]
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", default="runs/driving_seeds")
    parser.add_argument("--table-only", action="store_true", help="only tabulate finished runs")
    args, extra = parser.parse_known_args()
    out_root = ROOT / args.out
    out_root.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for config, run in STAGES:
            train(config, ROOT / run, [])
    runs = {s: out_root / f"grpo_seed{s}" for s in args.seeds}
    with ThreadPoolExecutor(args.parallel) as pool:
        work = {s: pool.submit(train, "configs/driving_grpo_gaussian.yaml", run, [f"--seed={s}", *extra], not args.table_only) for s, run in runs.items()}
        summaries = {s: f.result() for s, f in work.items()}
    rows = [
        "| seed | BC collision | GRPO collision | change | BC success | GRPO success | GRPO reward (world model - ground truth) |",
        "|---|---|---|---|---|---|---|",
    ]
    table = {}
    for s, summary in summaries.items():
        bc, rl = summary["start"]["heldout"]["metrics"], summary["final"]["heldout"]["metrics"]
        change = (rl["collision"] - bc["collision"]) / max(bc["collision"], 1e-9)
        table[s] = {"bc": bc, "grpo": rl, "collision_change": change}
        rows.append(
            f"| {s} | {bc['collision']:.3f} | {rl['collision']:.3f} | {change:+.0%} | {bc['success']:.3f} | "
            f"{rl['success']:.3f} | {rl['wm_reward_gap']:+.3f} |"
        )
    (out_root / "table.json").write_text(json.dumps(table, indent=2))
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
