"""Metric sinks beside metrics.jsonl: TensorBoard and Weights & Biases (``report_to``).

Each sink receives every metrics row (logged at its ``step``; the ``step`` key itself is the x
axis, not a series) and every rollout table (prompt image, completion, reward, components,
advantage). Both packages are optional (the ``logging`` extra) and imported only when a sink
opens. W&B follows its own environment: ``WANDB_MODE=offline`` writes the run under
``<run dir>/wandb/`` and reaches no server; ``WANDB_PROJECT`` names the project (default mmrft).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path


def open_sink(name: str, root: Path, config: dict, purge_step: int | None = None):
    """The sink ``name`` writing under run directory ``root``.

    ``purge_step``: a resumed run's first step; TensorBoard hides what an earlier launch logged
    from that step on (those steps are redone), as ``truncate_after`` does for metrics.jsonl.
    """
    if name not in SINKS:
        raise ValueError(f"unknown metric sink {name!r}; valid: {', '.join(SINKS)}")
    return SINKS[name](root, config, purge_step)


def scalars(metrics: dict) -> dict[str, float]:
    """The numeric entries of a metrics row but ``step`` (None, a non-finite value in metrics.jsonl, as NaN)."""
    return {
        key: math.nan if value is None else float(value)
        for key, value in metrics.items()
        if key != "step" and (value is None or isinstance(value, (int, float)))
    }


def prompt_image(sample: dict):
    """The first image of a sample's messages: a path, a ``data:image`` URI, a PIL image or
    ``{"bytes": ...}``; None without one."""
    for message in sample.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for item in content if isinstance(content, list) else []:
            if isinstance(item, dict) and item.get("type") == "image" and item.get("image") is not None:
                return item["image"]
    return None


def load_image(image):
    """A PIL RGB image from what :func:`prompt_image` returns; None if there is none or it cannot be read."""
    from PIL import Image

    try:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        if isinstance(image, dict) and image.get("bytes"):
            return Image.open(io.BytesIO(image["bytes"])).convert("RGB")
        if isinstance(image, str) and image.startswith("data:image"):
            from mmrft.data.validate import decode_data_uri

            return Image.open(io.BytesIO(decode_data_uri(image))).convert("RGB")
        if isinstance(image, dict) and image.get("path"):
            image = image["path"]
        if isinstance(image, (str, os.PathLike)) and os.path.isfile(image):
            with Image.open(image) as opened:
                return opened.convert("RGB")
    except (OSError, ValueError):  # unreadable or not an image: the table shows no picture
        return None
    return None


def rollout_columns(rows: list[dict]) -> list[str]:
    """The table's columns but the image: prompt id, completion, reward, its components, advantage."""
    components = sorted({key for row in rows for key in row if key.startswith("reward/")})
    return ["prompt_id", "completion", "reward", *components, "advantage"]


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table (TensorBoard's text tab renders it) of ``rows``, one line a completion."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "<br>".join(str(value).replace("\\", "\\\\").replace("|", "\\|").splitlines())

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def distinct_prompts(rows: list[dict]) -> list[tuple[str, object]]:
    """(prompt id, image) of each prompt in ``rows``, in order of first appearance."""
    seen: dict[str, object] = {}
    for row in rows:
        seen.setdefault(str(row["prompt_id"]), row.get("image"))
    return list(seen.items())


class TensorBoardSink:
    """Scalars under their metrics.jsonl names; each rollout table as text ``rollouts`` (Markdown) and
    its prompt images as ``rollouts/prompt_<k>`` (k: the prompt's place in the table)."""

    def __init__(self, logdir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def log_metrics(self, metrics: dict) -> None:
        for key, value in scalars(metrics).items():
            self.writer.add_scalar(key, value, metrics["step"])
        self.writer.flush()

    def log_rollouts(self, step: int, rows: list[dict]) -> None:
        import numpy as np

        prompts = distinct_prompts(rows)
        place = {prompt_id: k for k, (prompt_id, _) in enumerate(prompts)}
        table = [{**row, "prompt": place[str(row["prompt_id"])]} for row in rows]
        self.writer.add_text("rollouts", markdown_table(table, ["prompt", *rollout_columns(rows)]), step)
        for k, (_, image) in enumerate(prompts):
            pil = load_image(image)
            if pil is not None:
                self.writer.add_image(f"rollouts/prompt_{k}", np.asarray(pil), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """One W&B run per launch, named after the run directory, with the resolved config; metrics at
    their step and each rollout table as a ``wandb.Table`` named ``rollouts``."""

    def __init__(self, root: Path, config: dict):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            dir=str(root),
            config=config,
            project=os.environ.get("WANDB_PROJECT", "mmrft"),
            name=os.environ.get("WANDB_NAME", root.resolve().name),
            reinit="create_new",  # runs in one process (tests, sweeps) stay apart
        )

    def log_metrics(self, metrics: dict) -> None:
        self.run.log(scalars(metrics), step=metrics["step"])

    def log_rollouts(self, step: int, rows: list[dict]) -> None:
        columns = rollout_columns(rows)
        images = {prompt_id: load_image(image) for prompt_id, image in distinct_prompts(rows)}
        images = {prompt_id: self.wandb.Image(pil) if pil is not None else None for prompt_id, pil in images.items()}
        table = self.wandb.Table(columns=["step", "image", *columns])
        for row in rows:
            cells = [str(row["prompt_id"]), *(row.get(c) for c in columns[1:])]
            table.add_data(step, images[str(row["prompt_id"])], *cells)
        self.run.log({"rollouts": table}, step=step)

    def close(self) -> None:
        self.run.finish()


SINKS = {
    "tensorboard": lambda root, config, purge_step: TensorBoardSink(root / "tensorboard", purge_step),
    "wandb": lambda root, config, purge_step: WandbSink(root, config),  # a resume starts a new W&B run
}
