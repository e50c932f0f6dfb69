"""Compare RFT algorithm switches on the demo task: several variants x seeds, one table.

    python tools/algorithm_table.py --seeds 0 1 2 --parallel 2 --steps 700 \
        --start-eval runs/seeds/grpo_seed0/eval/start.json

Each variant is the demo config (configs/demo_grounding_grpo.yaml) plus the overrides in
VARIANTS at a constant lr, trained for the same number of steps (700 by default) with one CPU
thread per run (tools/demo_seeds.py's runner); the table reports each run's training wall
time beside its result, so variants that generate more per step (dynamic sampling) pay for it
there. A step budget keeps the comparison fair on a shared, noisy machine. ``--start-eval`` reuses an existing evaluation of the shared starting checkpoint
instead of repeating it in every run. Writes runs/algorithms/table.json (per variant and seed:
steps, minutes, held-out and training-split metrics, mean generation rounds per step and share of
groups kept) and prints a markdown table of held-out Acc@0.5 and mean IoU (mean and per seed).
"""

import argparse
import json
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_seeds import ROOT, metric_mean, prepare_once, run, split_metrics, training_minutes  # noqa: E402

GRPO = ["algorithm.advantage=grpo", "algorithm.loss_aggregation=token_mean"]
VARIANTS: dict[str, list[str]] = {  # overrides of the demo config, which itself runs Dr. GRPO
    "grpo": GRPO,
    "dr_grpo": ["algorithm.advantage=dr_grpo", "algorithm.loss_aggregation=seq_mean_token_sum_norm"],
    "dapo": [*GRPO, "algorithm.epsilon_high=0.28", "algorithm.dynamic_sampling=true", "algorithm.mask_truncated=true"],
    "grpo_zero_var_filter": [*GRPO, "algorithm.filter_zero_variance=true"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--out", default="runs/algorithms")
    parser.add_argument("--start-eval", help="eval/start.json of the starting checkpoint, reused by every run")
    args = parser.parse_args()
    out_root = ROOT / args.out
    out_root.mkdir(parents=True, exist_ok=True)
    jobs = [(f"{v}_seed{s}", v, s) for v in args.variants for s in args.seeds]
    for name, _, _ in jobs:
        if args.start_eval:
            (out_root / name / "eval").mkdir(parents=True, exist_ok=True)
            shutil.copy(args.start_eval, out_root / name / "eval" / "start.json")
    config = "configs/demo_grounding_grpo.yaml"
    prepare_once([config], [])
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = {
            # the README's table: 700 steps at a constant lr (the demo's recipe when it was measured)
            name: pool.submit(
                run, name, config, seed,
                [f"max_steps={args.steps}", "max_minutes=null", "optim.lr_schedule=constant", *VARIANTS[v]], out_root,
            )
            for name, v, seed in jobs
        }
        results = {name: f.result() for name, f in futures.items()}
    table, rows = {}, [
        "| variant | train minutes (mean) | held-out Acc@0.5: start → final, mean (per seed) | held-out mean IoU: start → final, mean (per seed) |",
        "|---|---|---|---|",
    ]
    for v in args.variants:
        runs = [results[f"{v}_seed{s}"] for s in args.seeds]
        start = runs[0]["start"]["heldout"]["metrics"]
        finals = [r["final"]["heldout"]["metrics"] for r in runs]
        dirs = [out_root / f"{v}_seed{s}" for s in args.seeds]
        minutes = [training_minutes(d) for d in dirs]
        table[v] = {
            "seeds": args.seeds, "steps": [r["steps"] for r in runs], "minutes": minutes, "start": start, "final": finals,
            "train": [split_metrics(r, "train") for r in runs],
            # generation rounds per step and the share of generated groups trained on (filters, dynamic sampling)
            "sampling_rounds_mean": [metric_mean(d, "sampling/rounds") for d in dirs],
            "kept_frac_mean": [metric_mean(d, "filter/kept_frac") for d in dirs],
        }
        acc = [f["acc@0.5"] for f in finals]
        iou = [f["mean_iou"] for f in finals]
        rows.append(
            f"| {v} | {statistics.mean(minutes):.1f} | {start['acc@0.5']:.3f} → {statistics.mean(acc):.3f} "
            f"({', '.join(f'{a:.3f}' for a in acc)}) | {start['mean_iou']:.3f} → {statistics.mean(iou):.3f} "
            f"({', '.join(f'{i:.3f}' for i in iou)}) |"
        )
    (out_root / "table.json").write_text(json.dumps(table, indent=2))
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
