"""A training set with corrupt images, missing videos, malformed rows and wrong types trains to completion;
every skipped sample is reported with its reason, and evaluation counts them as failures."""

from __future__ import annotations

import json
import os

import pytest

from mmrft.data.jsonl import JsonlDataset
from mmrft.data.synthetic.shapes import write_split
from mmrft.eval.evaluate import evaluate
from mmrft.training import GRPOTrainer

pytestmark = pytest.mark.faults


@pytest.fixture
def faulty_set(tmp_path):
    """38 good grounding samples plus 6 broken rows, shuffled in; returns (path, {broken id: reason fragment})."""
    path = write_split("grounding", "train", tmp_path, n=38, seed=3)
    good = [json.loads(line) for line in path.read_text().splitlines()]
    (tmp_path / "corrupt-a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    (tmp_path / "corrupt-b.png").write_bytes(open(tmp_path / good[0]["messages"][0]["content"][0]["image"], "rb").read()[:60])

    def variant(sample_id: str, **changes) -> str:
        sample = json.loads(json.dumps(good[0]))
        sample["id"] = sample_id
        sample.pop("image_size")
        for key, value in changes.items():
            if key == "image":
                sample["messages"][0]["content"][0]["image"] = value
            elif key == "video":
                sample["messages"][0]["content"].insert(0, {"type": "video", "video": value})
            else:
                sample[key] = value
        return json.dumps(sample)

    broken = {
        "corrupt-a": (variant("corrupt-a", image="corrupt-a.png"), "corrupt image"),
        "corrupt-b": (variant("corrupt-b", image="corrupt-b.png"), "corrupt image"),
        "missing-video": (variant("missing-video", video="clips/none.mp4"), "video not found"),
        "wrong-solution-type": (variant("wrong-solution-type", solution="[1, 2, 3, 4]"), "solution"),
        "wrong-messages-type": (variant("wrong-messages-type", messages="look at the image"), "messages must be"),
    }
    rows = [json.dumps(g) for g in good]
    for offset, (line, _) in enumerate(broken.values()):
        rows.insert(5 + 7 * offset, line)
    torn = '{"id": "malformed", "messages": ['  # a torn line: not JSON
    rows.insert(20, torn)
    path.write_text("\n".join(rows) + "\n")
    malformed_id = f"train.jsonl:{rows.index(torn) + 1}"
    reasons = {k: fragment for k, (_, fragment) in broken.items()} | {malformed_id: "invalid JSON"}
    return path, reasons


def test_faulty_training_set_trains_and_reports_every_skip(tmp_path, make_train_config, length_reward, faulty_set):
    path, reasons = faulty_set
    config = make_train_config(
        tmp_path / "run", data={"train": str(path)}, rewards=[{"name": length_reward}], batch_size=8, max_steps=6
    )
    trainer = GRPOTrainer(config)
    trainer.train()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]  # trained to completion
    report = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert {r["id"] for r in report} == set(reasons)  # every broken row, each once
    for row in report:
        assert reasons[row["id"]] in row["reason"], row
        assert 1 <= row["step"] <= 6
    assert metrics[-1]["data/skipped"] >= len(reasons)
    print(f"\nsamples skipped: {len(report)} of {len(JsonlDataset(path))}; reasons: {sorted({r['reason'].split(':')[0] for r in report})}")

    result = evaluate(trainer.policy, JsonlDataset(path), max_new_tokens=8)
    assert result.n == 44  # the denominator holds the broken rows too
    assert result.failures["bad_sample"] == len(reasons)
    assert len(result.samples) == 44
    assert {s["id"] for s in result.samples if s["failure"] == "bad_sample"} == set(reasons)
