"""Share of a demo GRPO step spent scoring rewards (target: below 5%).

    python tools/bench_reward_share.py --steps 20

Runs the demo config (configs/demo_grounding_grpo.yaml, the shipped base) for a few steps in a
temporary run directory and reads ``time/reward_s`` and ``time/step_s`` from its metrics.
Prints the median share and writes bench_reward_share.json.
"""

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from mmrft.config import TrainConfig, load_config
from mmrft.training.grpo import GRPOTrainer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--config", default=str(ROOT / "configs/demo_grounding_grpo.yaml"))
    parser.add_argument("--out", default="bench_reward_share.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"max_steps={args.steps}", "max_minutes=null", "eval_before_after=false", "progress_bar=false",
                     f"output_dir={tmp}", "save_every=100000"]
        GRPOTrainer(load_config(TrainConfig, args.config, overrides)).train()
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    rows = rows[1:]  # the first step pays one-off warm-up costs
    shares = [r["time/reward_s"] / r["time/step_s"] for r in rows]
    result = {
        "steps": len(rows),
        "median_step_s": statistics.median(r["time/step_s"] for r in rows),
        "median_reward_s": statistics.median(r["time/reward_s"] for r in rows),
        "median_reward_share": statistics.median(shares),
        "max_reward_share": max(shares),
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
