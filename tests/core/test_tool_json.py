"""Tools whose numbers the README and docs quote write them as JSON beside the printed table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "models" / "tiny-qwen2_5_vl-base"
sys.path.insert(0, str(ROOT / "tools"))


def test_grounding_ceiling_writes_its_table(tmp_path, capsys):
    from grounding_ceiling import main

    from mmrft.data.synthetic import write_synthetic_split

    split = write_synthetic_split("temporal_grounding", "heldout", tmp_path / "clips", n=4, seed=0)
    main([str(split), "--out", str(tmp_path / "ceiling.json")])
    report = json.loads((tmp_path / "ceiling.json").read_text())
    samples = [json.loads(line) for line in split.read_text().splitlines()]
    assert report["n"] == 4 and report["split"] == str(split)
    # The union of all windows holds the asked one, so its tIoU is the asked window's share of it.
    union = []
    for s in samples:
        on, off = s["solution"]
        spans = [(m["on_s"], m["off_s"]) for m in s["meta"]["shapes"]]
        union.append((off - on) / (max(b for _, b in spans) - min(a for a, _ in spans)))
    assert report["answers"]["union"]["miou"] == pytest.approx(sum(union) / 4)
    assert report["answers"]["union"]["r1@0.5"] == sum(u >= 0.5 for u in union) / 4
    assert report["answers"]["bound @ 0.25 s"] == {"miou": 1.0, "r1@0.5": 1.0}  # windows lie on the 0.25 s grid
    printed = capsys.readouterr().out
    for name, score in report["answers"].items():
        assert f"| {name} | {score['miou']:.3f} | {score['r1@0.5']:.3f} |" in printed


def test_probe_vision_writes_its_scores(tmp_path, capsys):
    from probe_vision import main

    out = tmp_path / "probe.json"
    main([str(BASE), "--train", "12", "--test", "6", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["chance"] == pytest.approx({"colour": 1 / 4, "shape": 1 / 3})
    scores = report["models"][str(BASE)]
    assert scores["features"] == 2 * 128  # mean- and max-pooled merged tokens of the base's width (128)
    for label in ("colour", "shape"):  # accuracies on 6 held-out clips
        assert 0 <= scores[label] <= 1 and scores[label] * 6 == pytest.approx(round(scores[label] * 6))
    printed = capsys.readouterr().out
    assert f"{BASE}: colour {scores['colour']:.3f}, shape {scores['shape']:.3f}" in printed


@pytest.mark.slow
def test_demo_seeds_table_holds_every_split_it_prints(tmp_path, monkeypatch):
    """One one-step demo run through tools/demo_seeds.py (a real `mmrft train` subprocess)."""
    import demo_seeds

    out = tmp_path / "seeds"
    overrides = [
        f"data.root={tmp_path}", "data.synthetic.train=8", "data.synthetic.heldout=4", "eval_samples=4",
        "max_steps=1", "max_minutes=null", "batch_size=2", "generation.num_generations=2",
    ]
    monkeypatch.setattr(sys, "argv", ["demo_seeds.py", "--seeds", "0", "--no-baseline", "--out", str(out), *overrides])
    monkeypatch.chdir(ROOT)
    demo_seeds.main()
    table = json.loads((out / "table.json").read_text())
    summary = json.loads((out / "demo_seed0" / "summary.json").read_text())
    row = table["demo_seed0"]
    assert row["steps"] == 1 and row["minutes"] > 0
    for split in ("heldout", "train"):
        got = row["train"] if split == "train" else {"start": row["start"], "final": row["final"]}
        assert got == {"start": summary["start"][split]["metrics"], "final": summary["final"][split]["metrics"]}
