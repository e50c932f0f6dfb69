"""``mmrft train CONFIG [key.sub=value ...]``: run a training stage from a YAML config."""

from __future__ import annotations

import argparse
import shlex
import sys

from mmrft.config import DrivingConfig, TrainConfig, load_train_config
from mmrft.eval.report import print_summary


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help="train a policy (SFT or GRPO) from a config")
    parser.add_argument("config", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. optim.lr=1e-5")
    parser.add_argument("--output-dir", help="run directory (overrides output_dir)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides max_steps)")
    parser.add_argument("--seed", type=int, help="seed (overrides seed)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.set_defaults(func=run)
    return parser


def build_config(args: argparse.Namespace) -> TrainConfig | DrivingConfig:
    overrides = list(args.overrides)
    for key, value in (("output_dir", args.output_dir), ("max_steps", args.max_steps), ("seed", args.seed)):
        if value is not None:
            overrides.append(f"{key}={value}")
    return load_train_config(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)  # before torch is imported: a config error answers at once
    from mmrft.training import STAGES
    from mmrft.training.trainer import NonFiniteError

    trainer = STAGES.get(config.stage)(config, resume=args.resume)
    try:
        summary = trainer.train()
    except NonFiniteError as err:
        print(f"mmrft train: error: {err}", file=sys.stderr)
        return 2
    processes = getattr(trainer, "processes", None)
    if processes is not None:
        processes.close()
        if not processes.is_main:  # the main process reports
            return 0
    if "stopped_by" in summary:
        command = shlex.join(["mmrft", "train", args.config, *args.overrides, "--output-dir", config.output_dir, "--resume"])
        print(f"stopped by {summary['stopped_by']} after step {summary['steps']}; checkpoint {summary['final_checkpoint']}")
        print(f"resume with: {command}")
        return 0
    print_summary(summary, config.output_dir)
    return 0
