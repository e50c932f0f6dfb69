"""Run the demo's RFT stage for several seeds, plus the equal-compute SFT baseline, and tabulate.

    python tools/demo_seeds.py --seeds 0 1 2 --parallel 2

Each run is `mmrft train` with its own output directory under runs/seeds/. Runs started in
parallel get one CPU thread each (OMP_NUM_THREADS=1), and so does the SFT baseline, so the
equal-wall-time comparison is like for like. Prints a markdown table and writes
runs/seeds/table.json.
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, config: str, seed: int, extra: list[str], out_root: Path) -> dict:
    out = out_root / name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = ["mmrft", "train", config, f"--seed={seed}", f"--output-dir={out}", "progress_bar=false", *extra]
    with open(out_root / f"{name}.log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=14.0, help="training wall time limit of every run")
    parser.add_argument("--out", default="runs/seeds")
    parser.add_argument("--no-baseline", action="store_true")
    args, extra = parser.parse_known_args()
    out_root = ROOT / args.out
    out_root.mkdir(parents=True, exist_ok=True)
    jobs = [(f"demo_seed{s}", "configs/demo_grounding_grpo.yaml", s) for s in args.seeds]
    if not args.no_baseline:
        jobs.append(("sft_equal_time", "configs/demo_grounding_sft_baseline.yaml", args.seeds[0]))
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = {
            name: pool.submit(run, name, config, seed, [f"max_minutes={args.minutes}", *extra], out_root)
            for name, config, seed in jobs
        }
        results = {name: f.result() for name, f in futures.items()}
    rows = ["| run | steps | held-out Acc@0.5 start → final | held-out mean IoU start → final |", "|---|---|---|---|"]
    table = {}
    for name, summary in results.items():
        start, final = summary["start"]["heldout"]["metrics"], summary["final"]["heldout"]["metrics"]
        table[name] = {"steps": summary["steps"], "start": start, "final": final}
        rows.append(
            f"| {name} | {summary['steps']} | {start['acc@0.5']:.3f} → {final['acc@0.5']:.3f} "
            f"({final['acc@0.5'] - start['acc@0.5']:+.3f}) | {start['mean_iou']:.3f} → {final['mean_iou']:.3f} "
            f"({final['mean_iou'] - start['mean_iou']:+.3f}) |"
        )
    (out_root / "table.json").write_text(json.dumps(table, indent=2))
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
