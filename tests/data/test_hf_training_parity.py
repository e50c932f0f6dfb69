"""The demo config trains the same on parquet datasets with embedded images, in each preset's
layout, as on the same samples given as mmrft JSONL (issue 29's "done when")."""

from __future__ import annotations

import json

import pytest

from mmrft.cli import main
from mmrft.data.jsonl import JsonlDataset
from mmrft.data.synthetic import write_synthetic_split
from tests.data.layouts import write_layout

STEPS = 20
TIMING = ("time/", "mem/")


def _train(data: str, out, *extra: str) -> list[dict]:
    argv = [
        "train", "configs/demo_grounding_grpo.yaml", f"data.train={data}", "data.heldout=null", "data.synthetic=null",
        f"max_steps={STEPS}", "eval_before_after=false", "progress_bar=false", "save_every=1000", f"output_dir={out}", *extra,
    ]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith(TIMING)} for row in rows]


@pytest.mark.slow
def test_parquet_presets_train_like_jsonl(tmp_path):
    jsonl = write_synthetic_split("grounding", "train", tmp_path / "jsonl", n=48, seed=0)
    dataset = JsonlDataset(jsonl)
    samples = [dataset[i] for i in range(len(dataset))]
    reference = _train(str(jsonl), tmp_path / "run-jsonl")
    assert len(reference) == STEPS
    assert reference[0]["reward/mean"] > 0 and len({row["reward/mean"] for row in reference}) > 1
    for preset in ("trl", "easyr1", "vlm_r1"):
        parquet = write_layout(preset, samples, tmp_path / f"{preset}.parquet")
        metrics = _train(str(parquet), tmp_path / f"run-{preset}", "data.columns={task: grounding}")
        assert metrics[0]["reward/mean"] == reference[0]["reward/mean"], preset  # identical first-step rewards
        assert metrics[0]["reward/box_iou/mean"] == reference[0]["reward/box_iou/mean"], preset
        assert metrics == reference, preset  # and every step's metrics after it
