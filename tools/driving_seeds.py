"""The driving recipe end to end, and the table of behaviour cloning against GRPO over seeds.

    python tools/driving_seeds.py --seeds 0 1 2 --parallel 2
    python tools/driving_seeds.py --table-only          # re-read finished runs

Runs `mmrft train` on configs/driving_world_model.yaml and configs/driving_bc_gaussian.yaml
(unless their runs exist), then configs/driving_grpo_gaussian.yaml once per seed (one CPU thread
each, `--parallel` at a time) into runs/driving_seeds/grpo_seed{s}. Every GRPO run evaluates its
starting (BC) policy and its final policy closed-loop in the ground-truth simulator on the same 200
held-out initial states; the table re-evaluates the BC policy and every final policy on
`--episodes` held-out initial states (default 1000: a 20% rate on 200 episodes has a standard
error of about 3 points). Prints a markdown table (collision and success per seed, relative
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = (("configs/driving_world_model.yaml", "runs/driving_world_model"), ("configs/driving_bc_gaussian.yaml", "runs/driving_bc_gaussian"))


def train(config: str, out: Path, extra: list[str], run: bool = True) -> dict:
    """The run's summary.json, training it first if it has none (and `run`)."""
    if run and not (out / "summary.json").is_file():
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(out.with_suffix(".log"), "a") as log:
            cmd = ["mmrft", "train", config, f"--output-dir={out}", "--resume", *extra]  # a rerun continues an interrupted run
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "summary.json").read_text())


def evaluate(checkpoint: Path, episodes: int) -> dict:
    """Greedy closed-loop metrics of a Gaussian-head checkpoint on the first `episodes` held-out initial states."""
    from mmrft.envs.vector import DrivingVectorEnv
    from mmrft.eval.closed_loop import evaluate_closed_loop
    from mmrft.policies.action import GaussianTrajectoryPolicy

    policy = GaussianTrajectoryPolicy.from_pretrained(checkpoint)
    return evaluate_closed_loop(policy, DrivingVectorEnv(episodes), episodes=episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", default="runs/driving_seeds")
    parser.add_argument("--table-only", action="store_true", help="only tabulate finished runs")
    parser.add_argument("--episodes", type=int, default=1000, help="held-out initial states of the table's evaluation")
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
        f"| seed | BC collision | GRPO collision | change | BC success | GRPO success | GRPO reward (world model - ground truth, {summaries[args.seeds[0]]['final']['heldout']['n']} states) |",
        "|---|---|---|---|---|---|---|",
    ]
    table = {}
    bc = evaluate(ROOT / yaml.safe_load((runs[args.seeds[0]] / "config.yaml").read_text())["policy"]["init"], args.episodes)
    for s, summary in summaries.items():
        rl = {**evaluate(ROOT / summary["final_checkpoint"], args.episodes), "wm_reward_gap": summary["final"]["heldout"]["metrics"]["wm_reward_gap"]}
        change = (rl["collision"] - bc["collision"]) / max(bc["collision"], 1e-9)
        table[s] = {"bc": bc, "grpo": rl, "collision_change": change}
        rows.append(
            f"| {s} | {bc['collision']:.3f} | {rl['collision']:.3f} | {change:+.1%} | {bc['success']:.3f} | "
            f"{rl['success']:.3f} | {rl['wm_reward_gap']:+.3f} |"
        )
    (out_root / "table.json").write_text(json.dumps(table, indent=2))
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
