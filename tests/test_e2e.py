"""End to end through the `mmrft` command: the demo's GRPO config and the base's SFT config, shortened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmrft.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "models" / "tiny-qwen2_5_vl-base"


def _data_overrides(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    return [
        f"data.train={data / 'train.jsonl'}",
        f"data.heldout={data / 'heldout.jsonl'}",
        "data.synthetic.train=24",
        "data.synthetic.heldout=8",
        "eval_samples=8",
        "progress_bar=false",
    ]


@pytest.mark.slow
def test_demo_config_runs_end_to_end_with_the_shipped_base(tmp_path, capsys):
    """The README's main job, shortened: start eval, GRPO steps, final eval, summary table."""
    if not (BASE / "config.json").is_file():
        pytest.skip(f"shipped base missing at {BASE}")
    out = tmp_path / "run"
    code = main(
        ["train", str(ROOT / "configs/demo_grounding_grpo.yaml"), "--max-steps", "3", "--output-dir", str(out),
         f"model.name_or_path={BASE}", "batch_size=2", "max_minutes=null", *_data_overrides(tmp_path)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| heldout (n=8) | acc@0.5 |" in printed and str(out / "summary.json") in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3
    for tag in ("start", "final"):
        for split in ("heldout", "train"):
            result = summary[tag][split]
            assert result["n"] == 8 and set(result["metrics"]) == {"acc@0.5", "mean_iou"}
    # The shipped base already answers in format: its start reward is well above zero.
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert steps[0]["reward/format_nothink/mean"] > 0.5
    config = (out / "config.yaml").read_text()
    assert "stage: grpo" in config and "max_steps: 3" in config


@pytest.mark.slow
def test_pretrain_config_runs_sft_from_a_tiny_spec(tmp_path):
    out = tmp_path / "run"
    code = main(
        ["train", str(ROOT / "configs/pretrain_base.yaml"), "--max-steps", "2", "--output-dir", str(out),
         "batch_size=4", "max_minutes=null", *_data_overrides(tmp_path)]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and Path(summary["final_checkpoint"]).is_dir()
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
