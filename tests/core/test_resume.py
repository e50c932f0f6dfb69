"""A run interrupted after a checkpoint and resumed continues exactly as the uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from mmrft.training import GRPOTrainer, SFTTrainer


def read_metrics(path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {row["step"]: row for row in rows}


def run_straight_and_resumed(tmp_path, make_train_config, trainer_cls, **overrides):
    """Run 4 steps in one go, and 2 steps then resume to 4 in another dir; return both trainers' outputs."""
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    straight = trainer_cls(make_train_config(straight_dir, max_steps=4, save_every=2, **overrides))
    straight.train()

    first = trainer_cls(make_train_config(resumed_dir, max_steps=2, save_every=2, **overrides))
    first.train()
    del first
    # Simulate a crash that left a log line past the checkpoint: resume must drop it.
    with open(resumed_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 3, "loss": 123.0}) + "\n")
    resumed = trainer_cls(make_train_config(resumed_dir, max_steps=4, save_every=2, **overrides), resume=True)
    assert resumed.step == 2
    resumed.train()
    return straight, resumed, read_metrics(straight_dir), read_metrics(resumed_dir)


def assert_same_weights(a, b):
    state_b = b.model.state_dict()
    for name, tensor in a.model.state_dict().items():
        torch.testing.assert_close(tensor, state_b[name], atol=1e-6, rtol=0, msg=lambda m, name=name: f"{name}: {m}")


def test_grpo_resume_matches_uninterrupted_run(tmp_path, make_train_config, length_reward):
    rewards = [{"name": "box_iou"}, {"name": length_reward}]
    straight, resumed, m_straight, m_resumed = run_straight_and_resumed(
        tmp_path, make_train_config, GRPOTrainer, rewards=rewards
    )
    assert sorted(m_straight) == sorted(m_resumed) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        for key in ("reward/mean", "loss", "completion_len/mean", "entropy", "grad_norm"):
            assert m_resumed[step][key] == pytest.approx(m_straight[step][key], abs=1e-6), (step, key)
    # Training actually happened: the later steps are not copies of the first.
    assert m_straight[4]["loss"] != m_straight[1]["loss"]
    assert_same_weights(straight, resumed)
    # The resumed run keeps the optimizer's step count and the data position.
    assert resumed.stream.state_dict() == straight.stream.state_dict()
    rollouts = [json.loads(line) for line in (tmp_path / "resumed" / "rollouts.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rollouts] == [1] * 8  # rollouts_every 10: only step 1, logged once


def test_sft_resume_matches_uninterrupted_run(tmp_path, make_train_config):
    straight, resumed, m_straight, m_resumed = run_straight_and_resumed(
        tmp_path, make_train_config, SFTTrainer, stage="sft"
    )
    assert sorted(m_resumed) == [1, 2, 3, 4]
    for step in (3, 4):
        assert m_resumed[step]["loss"] == pytest.approx(m_straight[step]["loss"], abs=1e-6)
        assert m_resumed[step]["completion_len/mean"] == m_straight[step]["completion_len/mean"]
    # SFT at lr 1e-3 lowers the loss on its targets within a few steps.
    assert m_straight[4]["loss"] < m_straight[1]["loss"]
    assert_same_weights(straight, resumed)


def test_a_fresh_run_refuses_a_directory_that_holds_a_run(tmp_path, make_train_config):
    """Without --resume a second run would reuse the first's start evaluation and append to its logs."""
    from mmrft.config import ConfigError

    SFTTrainer(make_train_config(tmp_path, stage="sft", max_steps=1)).train()
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="already holds a run .*metrics.jsonl.*--resume"):
        SFTTrainer(make_train_config(tmp_path, stage="sft", max_steps=2))
    assert (tmp_path / "metrics.jsonl").read_text() == before  # nothing touched
    SFTTrainer(make_train_config(tmp_path, stage="sft", max_steps=2), resume=True).train()
    assert sorted(read_metrics(tmp_path)) == [1, 2]
