"""Time to the first training step and peak memory against the training set's size.

Generates synthetic grounding splits as parquet (images embedded) of each size, then for each
runs the demo config for one step in a fresh process and reports the wall time from process
start to the end of the first optimizer step, and the process's peak RSS. Reading a parquet
source costs its footer and the row groups a batch touches, so both should stay flat.

    OMP_NUM_THREADS=1 python tools/bench_data_scaling.py --sizes 1000 100000 --data-dir /tmp/mmrft-scaling [--out bench_data_scaling.json]

The report (medians per size, their difference, and every run) is printed and written to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "demo_grounding_grpo.yaml"

# Runs in the child: start clock at interpreter start (before imports), stop after step 1.
CHILD = r"""
import json, resource, sys, time
start = time.time()
from mmrft.config import load_train_config
from mmrft.training import STAGES
config = load_train_config(sys.argv[1], sys.argv[3:])
trainer = STAGES.get(config.stage)(config)
opened = time.time()
trainer.train()
done = time.time()
print(json.dumps({"setup_s": opened - start, "first_step_s": done - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(trainer.dataset)}))
"""


def generate(data_dir: Path, n: int) -> Path:
    from mmrft.data.synthetic import write_synthetic_split

    out = data_dir / f"grounding-{n}"
    path = out / "train.parquet"
    if not path.is_file():
        t = time.time()
        write_synthetic_split("grounding", "train", out, n=n, seed=0, format="parquet")
        print(f"generated {n} rows in {time.time() - t:.0f} s: {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return path


def measure(train: Path, output_dir: Path) -> dict:
    overrides = [
        f"data.train={train}", "data.heldout=null", "data.synthetic=null", "max_steps=1",
        "eval_before_after=false", "progress_bar=false", f"output_dir={output_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(CONFIG), "--", *overrides], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "mmrft-scaling"), help="generated splits are kept here")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size, alternating sizes; the median is reported")
    parser.add_argument("--out", default="bench_data_scaling.json", help="where the report is written as JSON")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    paths = {n: generate(data_dir, n) for n in args.sizes}
    runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for n in args.sizes:
                runs[n].append(measure(paths[n], Path(tmp) / f"{n}-{r}"))
                print(json.dumps({"rows": n, **runs[n][-1]}), file=sys.stderr)
    report = {}
    for n, rows in runs.items():
        median = lambda key: sorted(row[key] for row in rows)[len(rows) // 2]  # noqa: E731
        report[n] = {"first_step_s": round(median("first_step_s"), 2), "setup_s": round(median("setup_s"), 2), "peak_rss_mb": round(median("peak_rss_mb"), 1)}
    small, large = min(args.sizes), max(args.sizes)
    report["growth"] = {
        "first_step_s": round(report[large]["first_step_s"] - report[small]["first_step_s"], 2),
        "peak_rss_mb": round(report[large]["peak_rss_mb"] - report[small]["peak_rss_mb"], 1),
    }
    Path(args.out).write_text(json.dumps({**report, "runs": runs}, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
