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
        self.report_to = list(report_to) if write else []
        self.config = to_dict(config)
        self._sinks = None  # opened on first use, once a resume has said which step comes next
        self._first_step = None
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))

    @property
    def sinks(self) -> list:
        """The ``report_to`` sinks (see :mod:`mmrft.training.sinks`)."""
        if self._sinks is None:
            from mmrft.training.sinks import open_sink

            self._sinks = [open_sink(name, self.root, self.config, self._first_step) for name in self.report_to]
        return self._sinks

    def close(self) -> None:
        """Flush and close the sinks (a W&B run is finished); the JSONL logs need no closing."""
        for sink in self._sinks or []:
            sink.close()
        self._sinks = None

    def truncate_after(self, step: int) -> None:
        """On resume, drop log lines of steps after the checkpoint (they will be redone), and a
        line torn by a kill mid-write."""
        if not self.write:
            return
        self._first_step = step + 1
        for name in ("metrics.jsonl", "rollouts.jsonl", "skipped.jsonl"):
            if (self.root / name).is_file():
                lines = (self.root / name).read_text().splitlines()
                keep = [line for line in lines if (s := _step_of(line)) is not None and s <= step]
                self._replace(name, "".join(line + "\n" for line in keep))

    def log_metrics(self, metrics: dict) -> None:
        self._append("metrics.jsonl", [metrics])
        for sink in self.sinks:
            sink.log_metrics(metrics)

    def log_skipped(self, rows: list[dict]) -> None:
        """Append skipped samples (step, id, reason) to skipped.jsonl: the data-fault report."""
        self._append("skipped.jsonl", rows)

    def log_rollouts(self, rows: list[dict]) -> None:
        """Append one step's rollouts to rollouts.jsonl and send them to the sinks as a table.

        A row's optional ``image`` (its prompt's first image: a path, a PIL image or embedded
        bytes) goes to the sinks; rollouts.jsonl keeps it only as a path.
        """
        self._append("rollouts.jsonl", [_without_pixels(row) for row in rows])
        if rows:
            for sink in self.sinks:
                sink.log_rollouts(int(rows[0]["step"]), rows)

    def model_card(self, step: int, eval_tag: str | None = None) -> str:
        """The model card (README.md text) of checkpoint ``step`` (see :func:`mmrft.training.model_card.run_model_card`)."""
        from mmrft.training.model_card import run_model_card

        return run_model_card(self.root, step, eval_tag, self.config)

    def update_model_card(self, checkpoint: Path, step: int, eval_tag: str) -> None:
        """Rewrite ``checkpoint``'s card once the held-out eval ``eval_tag`` of its weights exists
        (the final one runs after the last save)."""
        if self.write:
            from mmrft.training.checkpoint import write_model_card

            write_model_card(checkpoint, self.model_card(step, eval_tag))

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


def _without_pixels(row: dict) -> dict:
    """``row`` with its ``image`` as a path string, or without it when it is pixels, bytes or a data URI."""
    if "image" not in row:
        return row
    image = row["image"]
    path = image.get("path") if isinstance(image, dict) else image
    if isinstance(path, str) and not path.startswith("data:"):
        return {key: path if key == "image" else value for key, value in row.items()}
    return {key: value for key, value in row.items() if key != "image"}
