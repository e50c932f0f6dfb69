"""Pictures of a run: metrics over training steps, and a gallery of evaluated samples with
predicted and true answers drawn on them (boxes, points, time segments)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from mmrft.data.jsonl import JsonlDataset  # noqa: E402
from mmrft.rewards.coords import to_original  # noqa: E402

CURVES = ("reward/mean", "loss", "entropy", "completion_len/mean")


def plot_metrics(run_dir: str | Path, out: str | Path) -> Path:
    """Training curves (reward, loss, entropy, length) and every ``eval/*`` metric against step."""
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    keys = [k for k in CURVES if any(k in r for r in rows)]
    keys += sorted({k for r in rows for k in r if k.startswith("eval/")})
    if not keys:
        raise ValueError(f"{run_dir}/metrics.jsonl has none of {', '.join(CURVES)} or eval/*")
    cols = min(3, len(keys))
    fig, axes = plt.subplots(math.ceil(len(keys) / cols), cols, figsize=(4.2 * cols, 3 * math.ceil(len(keys) / cols)), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        steps, values = zip(*points) if points else ((), ())
        ax.plot(steps, values, marker="o" if key.startswith("eval/") else None, linewidth=1)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    return _save(fig, out)


def _save(fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _draw(ax, sample: dict, row: dict) -> None:
    task, parsed, truth = sample["task"], row.get("parsed"), sample["solution"]
    image = next(
        (i["image"] for m in sample["messages"] if isinstance(m["content"], list) for i in m["content"] if i.get("type") == "image"),
        None,
    )
    if task == "grounding" and image is not None:
        with Image.open(image) as im:
            ax.imshow(im.convert("RGB"))
        predicted = None
        if isinstance(parsed, list) and len(parsed) == 4:  # the model's convention -> original pixels
            predicted = to_original(parsed, row["convention"], tuple(row["image_size"]), tuple(row["input_size"]))
        for box, colour in ((truth, "lime"), (predicted, "red")):
            if box is not None:
                x1, y1, x2, y2 = box
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5))
    elif task == "temporal_grounding":
        duration = sample.get("duration") or max(truth[1], 1.0)
        ax.barh([1], [truth[1] - truth[0]], left=[truth[0]], color="lime", label="true")
        if parsed:
            start, end = parsed[0]
            ax.barh([0], [end - start], left=[start], color="red", label="predicted")
        ax.set_xlim(0, duration)
        ax.set_yticks([])
        ax.set_xlabel("seconds")
    else:
        ax.text(0.5, 0.5, f"true: {truth}\npredicted: {parsed}", ha="center", va="center", wrap=True, fontsize=8)
    ax.set_title(f"{row['id']}\nscore {row['score']:.2f}" + (f" ({row['failure']})" if row.get("failure") else ""), fontsize=7)
    if task != "temporal_grounding":
        ax.set_xticks([])
        ax.set_yticks([])


def gallery(eval_dir: str | Path, data: str | Path, out: str | Path, limit: int = 16) -> Path:
    """A grid of the first ``limit`` evaluated samples: true answers in green, predictions in red."""
    rows = [json.loads(line) for line in (Path(eval_dir) / "samples.jsonl").read_text().splitlines() if line.strip()][:limit]
    dataset = JsonlDataset(data)
    cols = min(4, max(len(rows), 1))
    fig, axes = plt.subplots(math.ceil(max(len(rows), 1) / cols), cols, figsize=(3 * cols, 3 * math.ceil(max(len(rows), 1) / cols)), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        if row.get("failure") == "bad_sample":
            ax.text(0.5, 0.5, f"{row['id']}\nbroken sample", ha="center", va="center", fontsize=8)
        else:
            _draw(ax, dataset[int(row["index"])], row)
    for ax in axes.flat:
        if not ax.has_data() and not ax.texts:
            ax.axis("off")
    return _save(fig, out)
