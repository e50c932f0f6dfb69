"""The model card (README.md) of a checkpoint, in the Hugging Face hub's format.

YAML front matter that the hub reads (base_model, library_name, pipeline_tag, tags, datasets and
the held-out evaluation as ``model-index``), then what a reader of the model page wants: how to
load it, the reward functions it was trained against, the training metrics at this step, the
held-out evaluation against the starting model, and the resolved config.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import yaml

CARD = "README.md"
TASK = "image-text-to-text"


def base_model_of(name_or_path: str) -> str | None:
    """The hub id the policy started from: the name itself when it is a hub id, the ``base_model``
    of a local model's own card (a checkpoint of an earlier run), else None (a local or tiny model)."""
    from huggingface_hub import ModelCard
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    local = Path(name_or_path).expanduser()
    if local.exists():
        if (local / CARD).is_file():
            base = ModelCard.load(local / CARD, ignore_metadata_errors=True).data.base_model
            return base if isinstance(base, str) else None
        return None
    if name_or_path.startswith("tiny:"):
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path if "/" in name_or_path else None


def hub_datasets(config: dict) -> list[str]:
    """Hub dataset ids among the config's data sources (``hf:org/name[:split]``)."""
    data = config.get("data") or {}
    sources = [data.get("train"), data.get("heldout")]
    return sorted({s[3:].split(":")[0] for s in sources if isinstance(s, str) and s.startswith("hf:")})


def reward_rows(config: dict) -> list[dict]:
    """Name, weight, task flag and one-line description of each configured reward."""
    from mmrft.rewards import reward_spec

    rows = []
    for reward in config.get("rewards") or []:
        try:
            description = reward_spec(reward["name"]).description
        except (KeyError, ValueError, OSError, ImportError):  # a plugin that is not importable here
            description = ""
        rows.append({"name": reward["name"], "weight": reward.get("weight", 1.0), "task": reward.get("task", True), "description": description})
    return rows


def render_model_card(
    config: dict,
    step: int,
    metrics: dict | None = None,
    heldout: dict | None = None,
    start: dict | None = None,
    model_name: str | None = None,
) -> str:
    """The README.md of checkpoint ``step`` of a run with resolved ``config``.

    ``metrics``: the metrics.jsonl row of that step (or the last one before it); ``heldout``: the
    held-out eval.json of these weights, ``start``: the one of the starting model (either may be None).
    """
    from huggingface_hub import EvalResult, ModelCardData

    name = model_name or Path(config.get("output_dir") or "mmrft-model").name
    source = (config.get("model") or {}).get("name_or_path", "")
    base = base_model_of(source)
    stage = config.get("stage", "grpo")
    rewards = reward_rows(config) if stage == "grpo" else []
    results = _finite((heldout or {}).get("metrics") or {})
    dataset = heldout_dataset(config)
    data = ModelCardData(
        base_model=base,
        library_name="transformers",
        pipeline_tag=TASK,
        tags=["mmrft", stage, "vision-language", *(["reinforcement-learning"] if stage == "grpo" else [])],
        datasets=hub_datasets(config) or None,
        model_name=name if results else None,
        eval_results=[
            EvalResult(
                task_type=TASK, dataset_type=dataset, dataset_name=dataset, dataset_split="heldout",
                metric_type=metric, metric_name=metric, metric_value=value,
            )
            for metric, value in results.items()
        ] or None,
    )
    lines = [
        "---", data.to_yaml(), "---", "",
        f"# {name} (step {step})", "",
        f"{_stage_sentence(stage)} with mmrft for {step} optimizer steps, from "
        + (f"[{base}](https://huggingface.co/{base})." if base else f"`{source}` (a local model, not on the hub)."),
        "", "## Use", "", "```python", "from transformers import AutoModelForImageTextToText, AutoProcessor", "",
        'model = AutoModelForImageTextToText.from_pretrained("REPO_ID")',
        'processor = AutoProcessor.from_pretrained("REPO_ID")', "```", "",
    ]
    if rewards:
        lines += ["## Reward functions", "", "| reward | weight | task reward | description |", "|---|---|---|---|"]
        lines += [f"| `{r['name']}` | {r['weight']:g} | {'yes' if r['task'] else 'no'} | {_cell(r['description'])} |" for r in rewards]
        lines.append("")
    if metrics:
        lines += [f"## Training metrics at step {metrics.get('step', step)}", "", "| metric | value |", "|---|---|"]
        lines += [f"| `{key}` | {_number(value)} |" for key, value in metrics.items() if key != "step"]
        lines.append("")
    if heldout or start:
        lines += _eval_section(heldout, start, step, dataset)
    lines += ["## Training config", "", "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def run_model_card(root: Path, step: int, eval_tag: str | None = None, config: dict | None = None) -> str:
    """The card of checkpoint ``step`` of the run in directory ``root``, from its files: config.yaml
    (unless ``config`` is given), the metrics.jsonl row of that step, the held-out eval under
    ``eval/<eval_tag>/`` (default: the one run at that step, if any) and the starting model's."""
    root = Path(root)
    if config is None:
        config = yaml.safe_load((root / "config.yaml").read_text())
    return render_model_card(
        config,
        step,
        metrics=metrics_at(root, step),
        heldout=_heldout_eval(root, eval_tag or f"step-{step:06d}"),
        start=_heldout_eval(root, "start"),
        model_name=root.resolve().name,
    )


def metrics_at(root: Path, step: int) -> dict | None:
    """The metrics.jsonl row of ``step`` under run directory ``root``, or the last one before it (``log_every`` > 1)."""
    found = None
    path = Path(root) / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except ValueError:  # a line torn by a kill
            continue
        if isinstance(row.get("step"), int) and row["step"] <= step:
            found = row
    return found


def _heldout_eval(root: Path, tag: str) -> dict | None:
    path = Path(root) / "eval" / tag / "heldout" / "eval.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _stage_sentence(stage: str) -> str:
    if stage == "sft":
        return "Supervised fine-tuning of a vision-language model"
    return "Reinforcement fine-tuning (GRPO-family, verifiable rewards) of a vision-language model"


def heldout_dataset(config: dict) -> str:
    """What the held-out split is called: its hub id, else the folder its file is in."""
    source = str((config.get("data") or {}).get("heldout") or "heldout")
    if source.startswith("hf:"):
        return source[3:].split(":")[0]
    return Path(source).parent.name or source


def _eval_section(heldout: dict | None, start: dict | None, step: int, dataset: str) -> list[str]:
    here, before = (heldout or {}).get("metrics") or {}, (start or {}).get("metrics") or {}
    shown = heldout or start
    lines = [
        "## Held-out evaluation", "",
        f"`{dataset}`, {shown.get('n', '?')} held-out samples (greedy decoding; the same parsers as the rewards).", "",
        f"| metric | starting model | step {step} |", "|---|---|---|",
    ]
    lines += [f"| `{m}` | {_number(before.get(m))} | {_number(here.get(m))} |" for m in sorted({*here, *before})]
    failures = (heldout or {}).get("failures") or {}
    if failures:
        lines += ["", "Unparsed answers at this step: " + ", ".join(f"{reason} {count}" for reason, count in sorted(failures.items())) + "."]
    if heldout is None:
        lines += ["", f"This checkpoint's weights were not evaluated on the held-out split (set eval_every to a divisor of {step})."]
    return [*lines, ""]


def _finite(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _cell(text: str) -> str:
    """``text`` safe in a Markdown table cell (the hub renders HTML tags such as <answer> as tags)."""
    return html.escape(text, quote=False).replace("|", "\\|")


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
