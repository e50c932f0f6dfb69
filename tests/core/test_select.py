"""``mmrft select``: offline pass-rate selection writes a usable, consistent JSONL."""

from __future__ import annotations

import json

import yaml

from mmrft.cli import main
from mmrft.data.jsonl import JsonlDataset
from mmrft.data.validate import check_sample


def test_select_keeps_prompts_in_the_pass_rate_window(tmp_path, tiny_model_dir, grounding_data, length_reward, capsys):
    config = {
        "model": {"name_or_path": str(tiny_model_dir("qwen2_5_vl"))},
        "data": {"train": str(grounding_data.train)},
        "generation": {"max_new_tokens": 8},
        "rewards": [{"name": length_reward}, {"name": "format_nothink", "task": False}],
    }
    path = tmp_path / "select.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "elsewhere" / "selected.jsonl"
    code = main(["select", str(path), "--out", str(out), "--samples", "4", "--threshold", "25", "--min-pass", "0.25", "--max-pass", "0.75"])
    assert code == 0
    counts = json.loads(capsys.readouterr().out.splitlines()[0])
    assert counts["seen"] == 16 and sum(counts["pass_rates"]) == 16
    assert counts["kept"] == sum(counts["pass_rates"][1:4])  # 1, 2 or 3 passes of 4
    selected = JsonlDataset(out)
    assert len(selected) == counts["kept"] > 0
    for i in range(len(selected)):
        sample = selected[i]
        check_sample(sample)  # media paths were rewritten relative to the new file
        assert 0.25 <= sample["meta"]["pass_rate"] <= 0.75
        assert sample["meta"]["difficulty"] == 1 - sample["meta"]["pass_rate"]
    line = json.loads(out.read_text().splitlines()[0])
    assert not line["messages"][0]["content"][0]["image"].startswith("/")
