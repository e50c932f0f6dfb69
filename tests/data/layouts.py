"""Write mmrft samples in TRL's, EasyR1's and VLM-R1's dataset layouts, the way those projects'
users do: ``datasets.Dataset`` with ``datasets.Image`` features, saved with ``to_parquet``
(images embedded as {"bytes", "path"}). Independent of mmrft's own writer on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import datasets

PRESET_TASK = {"task": "grounding"}  # none of the three layouts has a task column


def _parts(sample: dict) -> tuple[bytes, str]:
    content = sample["messages"][0]["content"]
    image = next(item["image"] for item in content if item["type"] == "image")
    text = next(item["text"] for item in content if item["type"] == "text")
    return Path(image).read_bytes(), text


def layout_rows(preset: str, samples: list[dict]) -> tuple[dict, datasets.Features]:
    """Columns (name -> values) and features of ``samples`` in ``preset``'s layout."""
    images, texts = zip(*(_parts(s) for s in samples), strict=True)
    embedded = [{"bytes": b, "path": None} for b in images]
    if preset == "trl":
        columns = {"prompt": list(texts), "image": embedded, "solution": [s["solution"] for s in samples]}
        features = {"prompt": datasets.Value("string"), "image": datasets.Image(), "solution": datasets.List(datasets.Value("int64"))}
    elif preset == "easyr1":
        columns = {
            "problem": [f"<image>{t}" for t in texts],
            "answer": [json.dumps(s["solution"]) for s in samples],
            "images": [[e] for e in embedded],
        }
        features = {"problem": datasets.Value("string"), "answer": datasets.Value("string"), "images": datasets.List(datasets.Image())}
    elif preset == "vlm_r1":
        columns = {
            "id": [s["id"] for s in samples],
            "image": embedded,
            "conversations": [
                [{"from": "human", "value": f"<image>{t}"}, {"from": "gpt", "value": json.dumps(s["solution"])}]
                for s, t in zip(samples, texts, strict=True)
            ],
        }
        turn = {"from": datasets.Value("string"), "value": datasets.Value("string")}
        features = {"id": datasets.Value("string"), "image": datasets.Image(), "conversations": datasets.List(turn)}
    else:
        raise ValueError(preset)
    return columns, datasets.Features(features)


def write_layout(preset: str, samples: list[dict], path: Path) -> Path:
    """``samples`` as a parquet file in ``preset``'s layout."""
    columns, features = layout_rows(preset, samples)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
    return path
