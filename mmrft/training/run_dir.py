"""The run directory: resolved config, metrics.jsonl, rollouts.jsonl and optional metric sinks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from mmrft.config import ConfigError, to_dict

RUN_FILES = ("metrics.jsonl", "checkpoints", "eval", "summary.json")
"""What a run leaves in its directory: a fresh run refuses a directory that holds any of them."""


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunDir:
    """Owns everything a run writes; nothing is written outside ``root``.

    With ``write=False`` (every training process but the main one) it writes nothing. Unless
    ``resume``, ``root`` must not hold an earlier run: a fresh run there would reuse its start
    evaluation and append to its logs.
    """

    def __init__(self, root: str | Path, config, report_to: list[str] = (), write: bool = True, resume: bool = False):
        self.root = Path(root)
        left = [name for name in RUN_FILES if (self.root / name).exists()]
        if left and not resume:
            raise ConfigError(
                f"output_dir: {self.root} already holds a run ({', '.join(left)}); continue it with --resume, "
                "or start a new run in another --output-dir"
            )
        self.checkpoints = self.root / "checkpoints"
        self.write = write
        self.sinks = []
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
            self.sinks = [_make_sink(name, self.root) for name in report_to]

    def truncate_after(self, step: int) -> None:
        """On resume, drop log lines of steps after the checkpoint (they will be redone), and a
        line torn by a kill mid-write."""
        if not self.write:
            return
        for name in ("metrics.jsonl", "rollouts.jsonl", "skipped.jsonl"):
            if (self.root / name).is_file():
                lines = (self.root / name).read_text().splitlines()
                keep = [line for line in lines if (s := _step_of(line)) is not None and s <= step]
                self._replace(name, "".join(line + "\n" for line in keep))

    def log_metrics(self, metrics: dict) -> None:
        self._append("metrics.jsonl", [metrics])
        for sink in self.sinks:
            sink(metrics)

    def log_skipped(self, rows: list[dict]) -> None:
        """Append skipped samples (step, id, reason) to skipped.jsonl: the data-fault report."""
        self._append("skipped.jsonl", rows)

    def log_rollouts(self, rows: list[dict]) -> None:
        self._append("rollouts.jsonl", rows)

    def write_jsonl(self, name: str, rows: list[dict]) -> Path:
        """Write ``rows`` to ``name`` under the run directory atomically, one JSON object a line."""
        return self._replace(name, "".join(json.dumps(row) + "\n" for row in rows))

    def write_json(self, name: str, data: dict) -> Path:
        return self._replace(name, json.dumps(data, indent=2))

    def _append(self, name: str, rows: list[dict]) -> None:
        """Append rows to a log, non-finite floats written as null."""
        if not self.write:
            return
        with open(self.root / name, "a") as f:
            f.write("".join(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n" for row in rows))

    def _replace(self, name: str, text: str) -> Path:
        """Write ``text`` to ``name`` atomically: a reader sees the old file or the new one."""
        path = self.root / name
        if not self.write:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _make_sink(name: str, root: Path):
    if name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(root / "tensorboard"))
        return lambda m: [writer.add_scalar(k, v, m["step"]) for k, v in m.items() if isinstance(v, (int, float))]
    if name == "wandb":
        import wandb

        run = wandb.init(dir=str(root), config=yaml.safe_load((root / "config.yaml").read_text()))
        return lambda m: run.log(m, step=m["step"])
    raise ValueError(f"unknown metric sink {name!r}")
