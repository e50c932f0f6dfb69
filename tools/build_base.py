"""Rebuild the shipped tiny pretrained base: supervised pretraining on synthetic grounding.

    python tools/build_base.py                 # ~40 minutes on 2 CPU cores
    python tools/build_base.py --minutes 5     # a quicker, weaker base
    mmrft train configs/pretrain_video_base_stage1.yaml    # the video base: stage 1, then stage 2 packaged
    python tools/build_base.py --config configs/pretrain_video_base.yaml --minutes 90 \
        --run-dir runs/pretrain_video_base --out models/tiny-qwen2_5_vl-video-base --card tools/video_base_card.md

Runs ``mmrft train CONFIG`` (seeded: same data, same init, same order; default
configs/pretrain_base.yaml), then copies the final weights and processor to the output
directory together with its training log (held-out metrics by step) and a model card.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/pretrain_base.yaml")
    parser.add_argument("--minutes", type=float, default=40.0, help="pretraining wall time")
    parser.add_argument("--run-dir", default="runs/pretrain_base")
    parser.add_argument("--out", default="models/tiny-qwen2_5_vl-base")
    parser.add_argument("--card", default="tools/base_card.md", help="model card template")
    parser.add_argument("--skip-training", action="store_true", help="only package an existing run")
    args = parser.parse_args()
    run_dir, out = ROOT / args.run_dir, ROOT / args.out
    if not args.skip_training:
        cmd = [sys.executable, "-m", "mmrft", "train", args.config, f"max_minutes={args.minutes}", f"output_dir={args.run_dir}"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    checkpoint = Path(summary["final_checkpoint"])
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(checkpoint, out, ignore=shutil.ignore_patterns("trainer_state.pt", "complete.json"))
    log = [
        {k: v for k, v in json.loads(line).items() if k == "step" or k.startswith("eval/") or k == "loss"}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    (out / "training_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log if any(k.startswith("eval/") for k in r)))
    shutil.copy(run_dir / "config.yaml", out / "pretrain_config.yaml")
    final = summary["final"]["heldout"]["metrics"]
    card = (ROOT / args.card).read_text().format(
        steps=summary["steps"], metrics=_metrics(final), n=summary["final"]["heldout"]["n"]
    )
    train = summary["final"]["train"]["metrics"]
    card += f"- Training split at the end (first {summary['final']['train']['n']} samples): {_metrics(train)}.\n"
    (out / "README.md").write_text(card)
    print(f"wrote {out}: held-out {_metrics(final)}")


def _metrics(metrics: dict) -> str:
    names = {"acc@0.5": "Acc@0.5", "mean_iou": "mean IoU", "miou": "mIoU", "accuracy": "accuracy"}
    return ", ".join(f"{names.get(k, k.upper() if k.startswith('r1') else k)} {v:.3f}" for k, v in metrics.items())


if __name__ == "__main__":
    sys.exit(main())
