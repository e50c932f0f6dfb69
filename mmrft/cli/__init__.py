"""The ``mmrft`` command: train, eval, report, rewards, select, data.

Subcommand modules import only what their parsers need; torch, transformers and the data
libraries are imported inside the command that runs, so ``mmrft --help`` and a config error
answer at once (tests/test_cli_imports.py checks which modules each command loads).
"""

from __future__ import annotations

import argparse
import logging
import sys

from mmrft.cli import data as data_cmd
from mmrft.cli import eval as eval_cmd
from mmrft.cli import push as push_cmd
from mmrft.cli import report as report_cmd
from mmrft.cli import rewards as rewards_cmd
from mmrft.cli import select as select_cmd
from mmrft.cli import smoke as smoke_cmd
from mmrft.cli import train as train_cmd
from mmrft.config import ConfigError, is_override
from mmrft.data.errors import SampleError

# Errors a user can fix from the message alone: printed as one line, no traceback.
USER_ERRORS = (ConfigError, SampleError, FileNotFoundError, KeyError)


def user_errors() -> tuple[type[BaseException], ...]:
    """USER_ERRORS plus the model loader's error once a command has imported the loader."""
    loading = sys.modules.get("mmrft.policies.loading")
    return USER_ERRORS + ((loading.ModelLoadError,) if loading is not None else ())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmrft", description="Reinforcement fine-tuning of multimodal policies.")
    sub = parser.add_subparsers(dest="command", required=True)
    train_cmd.add_parser(sub)
    eval_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    rewards_cmd.add_parser(sub)
    select_cmd.add_parser(sub)
    smoke_cmd.add_parser(sub)
    data_cmd.add_parser(sub)
    push_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    # key=value overrides may come before or after the flags of `train`: argparse only binds
    # a positional list once, so the ones after flags arrive as "unknown" and are added here.
    args, extra = parser.parse_known_args(argv)
    overrides = [e for e in extra if is_override(e)]
    if hasattr(args, "overrides"):
        args.overrides = [*args.overrides, *overrides]
        extra = [e for e in extra if e not in overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"mmrft {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
