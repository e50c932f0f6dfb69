"""``mmrft report RUN_DIR``: training curves and a gallery of held-out predictions, as PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("report", help="plot a run's metrics and draw its held-out predictions")
    parser.add_argument("run_dir", help="a training run directory (metrics.jsonl, eval/)")
    parser.add_argument("--checkpoint", default="final", help="which evaluation to draw: final, start or step-NNNNNN")
    parser.add_argument("--limit", type=int, default=16, help="samples in the gallery")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mmrft.eval.plots import gallery, plot_metrics

    root = Path(args.run_dir)
    if not (root / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"not a run directory (no metrics.jsonl): {root}")
    print(f"wrote {plot_metrics(root, root / 'report' / 'metrics.png')}")
    eval_dir = root / "eval" / args.checkpoint / "heldout"
    heldout = (yaml.safe_load((root / "config.yaml").read_text()) or {}).get("data", {}).get("heldout")
    if (eval_dir / "samples.jsonl").is_file() and heldout:
        out = gallery(eval_dir, heldout, root / "report" / f"gallery-{args.checkpoint}.png", args.limit)
        print(f"wrote {out}")
    else:
        print(f"no held-out predictions in {eval_dir}: gallery skipped")
    return 0
