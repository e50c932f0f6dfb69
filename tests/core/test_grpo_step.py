"""GRPO end to end on tiny models: one step moves every weight, short runs honour the run-dir contract."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForImageTextToText

from mmrft.training import GRPOTrainer

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
METRIC_KEYS = (
    "step",
    "reward/mean",
    "reward/std",
    "loss",
    "entropy",
    "clip_frac",
    "completion_len/mean",
    "frac_zero_std_groups",
    "time/step_s",
    "time/generate_s",
    "data/skipped",
)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_one_grpo_step_changes_every_trainable_parameter(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path / "run",
        rewards=[{"name": "box_iou"}, {"name": "format_nothink"}, {"name": length_reward}],
        max_steps=1,
    )
    trainer = GRPOTrainer(config)
    assert trainer.ref_model is None  # beta 0: no reference model is loaded
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert len(before) > 50
    trainer.train()

    after = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert not unchanged, f"{len(unchanged)} trainable parameters did not move, e.g. {unchanged[:5]}"
    vision = [n for n in before if ".visual." in n or n.startswith("model.visual")]
    assert vision, "the vision tower is trainable by default and must have moved too"

    (metrics,) = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert metrics["step"] == 1
    assert metrics["frac_zero_std_groups"] == 0.0  # the length reward differs within each group
    assert metrics[f"reward/{length_reward}/mean"] > 0
    assert math.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
    # 2 prompts, G = 4: generation encodes 2 images, the training forward 2 more (not 8).
    assert metrics["vision/encodes"] == 4 and metrics["vision/encodes_train"] == 2
    assert metrics["clip_frac"] == 0.0  # one update per batch: ratio is 1 at the only update


@pytest.mark.parametrize("arch", ARCHS)
def test_short_grpo_run_writes_the_run_dir_contract(arch, tmp_path, make_train_config):
    out = tmp_path / "run"
    config = make_train_config(out, arch=arch, max_steps=3, rollouts_every=2, save_every=2)
    summary = GRPOTrainer(config).train()
    assert summary["steps"] == 3

    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        missing = [k for k in METRIC_KEYS + ("reward/box_iou/mean", "reward/format_nothink/mean") if k not in row]
        assert not missing, f"metrics.jsonl lacks {missing}"
        assert "kl" not in row  # beta 0
        assert 0.0 <= row["reward/box_iou/mean"] <= 1.0 and 0.0 <= row["reward/format_nothink/mean"] <= 1.0
        assert 0.0 <= row["frac_zero_std_groups"] <= 1.0 and 0.0 <= row["clip_frac"] <= 1.0
        assert 1.0 <= row["completion_len/mean"] <= 8.0
        assert row["entropy"] > 0 and row["time/step_s"] >= row["time/generate_s"] > 0
        assert row["data/skipped"] == 0
        # reward/mean is the mean of the summed rewards (both apply to every completion).
        assert row["reward/mean"] == pytest.approx(row["reward/box_iou/mean"] + row["reward/format_nothink/mean"], abs=1e-5)

    rollouts = read_jsonl(out / "rollouts.jsonl")
    assert len(rollouts) == 2 * 2 * 4  # steps 1 and 3 (rollouts_every 2), 2 prompts x G 4 each
    assert {r["step"] for r in rollouts} == {1, 3}
    for r in rollouts:
        assert {"prompt_id", "completion", "reward", "advantage", "reward/box_iou", "reward/format_nothink"} <= r.keys()
        assert r["prompt_id"].startswith("shapes_grounding-train-")
    for step in (1, 3):
        group = {}
        for r in rollouts:
            if r["step"] == step:
                group.setdefault(r["prompt_id"], []).append(r["advantage"])
        assert len(group) == 2 and all(len(v) == 4 and abs(sum(v)) < 1e-4 for v in group.values())

    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step-000002", "step-000003"]  # keep_last 2
    final = out / "checkpoints" / "step-000003"
    assert (final / "model.safetensors").is_file() and (final / "complete.json").is_file()
    loaded = AutoModelForImageTextToText.from_pretrained(final)
    assert loaded.config.model_type == arch
    assert (out / "config.yaml").is_file()


def test_checkpoint_weights_equal_trained_weights(tmp_path, make_train_config):
    config = make_train_config(tmp_path / "run", max_steps=1)
    trainer = GRPOTrainer(config)
    summary = trainer.train()
    loaded = AutoModelForImageTextToText.from_pretrained(summary["final_checkpoint"])
    state = trainer.model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_kl_term_loads_reference_and_logs_kl(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path / "run", max_steps=2, algorithm={"beta": 0.04}, rewards=[{"name": length_reward}]
    )
    trainer = GRPOTrainer(config)
    assert trainer.ref_model is not None
    assert not any(p.requires_grad for p in trainer.ref_model.parameters())
    ref_before = {n: p.clone() for n, p in trainer.ref_model.named_parameters()}
    trainer.train()
    first, second = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    # At the first step the policy equals the reference, so the k3 KL is (numerically) zero;
    # after one update it is positive.
    assert "kl" in first and 0.0 <= first["kl"] < 1e-6
    assert second["kl"] > 1e-6
    # The reference stays frozen while the policy moves.
    for name, p in trainer.ref_model.named_parameters():
        assert torch.equal(p, ref_before[name]), name
    moved = dict(trainer.model.named_parameters())
    assert not torch.equal(moved["lm_head.weight"].detach(), ref_before["lm_head.weight"])
