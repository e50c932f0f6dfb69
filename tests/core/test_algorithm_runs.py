"""Every RFT switch through a config: a short GRPO run on the tiny Qwen2.5-VL that trains.

Whether the trainer obeys each switch (advantages and losses only that switch produces) is
checked in tests/core/test_switch_effects.py."""

from __future__ import annotations

import json

import pytest
import torch

from mmrft.training import GRPOTrainer


def metrics_of(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def params(trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


@pytest.mark.parametrize(
    "algorithm",
    [
        {"advantage": "dr_grpo", "loss_aggregation": "seq_mean_token_sum_norm"},
        {"advantage": "rloo"},
        {"advantage": "reinforce_pp"},
        {"advantage": "grpo", "std_scale": "batch", "loss_aggregation": "seq_mean_token_mean"},
        {"dual_clip": 3.0, "epsilon_high": 0.28},
    ],
    ids=["dr_grpo", "rloo", "reinforce_pp", "grpo_batch_std", "dual_clip"],
)
def test_estimators_and_losses_train(tmp_path, make_train_config, length_reward, algorithm):
    config = make_train_config(tmp_path, rewards=[{"name": length_reward}], algorithm=algorithm, max_steps=2)
    trainer = GRPOTrainer(config)
    before = params(trainer)
    trainer.train()
    moved = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert len(moved) == len(before)
    rows = metrics_of(tmp_path)
    assert len(rows) == 2 and all(r["grad_norm"] > 0 for r in rows)


@pytest.mark.parametrize("kl_in", ["loss", "reward"])
@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_estimators_and_placement(tmp_path, make_train_config, length_reward, kl_in, estimator):
    config = make_train_config(
        tmp_path,
        rewards=[{"name": length_reward}],
        algorithm={"beta": 0.1, "kl_estimator": estimator, "kl_in": kl_in},
        max_steps=2,
    )
    trainer = GRPOTrainer(config)
    assert trainer.ref_model is not None
    trainer.train()
    first, second = metrics_of(tmp_path)
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference before the first update
    assert second["kl"] != 0.0


def test_zero_variance_filter_and_dynamic_sampling_skip_uninformative_groups(tmp_path, make_train_config, length_reward):
    # A random tiny model never hits a box: box_iou is 0 everywhere, so no group is informative
    # on the task reward, while the non-task length reward varies (and would have kept them).
    config = make_train_config(
        tmp_path,
        rewards=[{"name": "box_iou"}, {"name": length_reward, "weight": 0.01, "task": False}],
        algorithm={"dynamic_sampling": True, "max_sampling_rounds": 3},
    )
    trainer = GRPOTrainer(config)
    before = params(trainer)
    trainer.train()
    (row,) = metrics_of(tmp_path)
    assert row["sampling/rounds"] == 3 and row["filter/kept_frac"] == 0.0
    assert row["update/skipped"] == 1.0
    assert all(torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    assert trainer.stream.state_dict()["cursor"] == 6  # three rounds of two prompts drawn


def test_filter_keeps_informative_groups_in_one_round(tmp_path, make_train_config, length_reward):
    config = make_train_config(tmp_path, rewards=[{"name": length_reward}], algorithm={"filter_zero_variance": True})
    GRPOTrainer(config).train()
    (row,) = metrics_of(tmp_path)
    assert row["sampling/rounds"] == 1 and row["filter/kept_frac"] == 1.0 and row["update/skipped"] == 0.0


def test_num_iterations_updates_several_times_per_batch(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path, rewards=[{"name": length_reward}], algorithm={"num_iterations": 3}, optim={"lr": 1e-2}
    )
    trainer = GRPOTrainer(config)
    trainer.train()
    state = next(iter(trainer.optimizer.state.values()))
    assert int(state["step"]) == 3
    (row,) = metrics_of(tmp_path)
    assert row["clip_frac"] > 0  # the last update is off-policy: its ratios moved past the clip range


def test_mask_truncated_leaves_truncated_completions_out(tmp_path, make_train_config, length_reward):
    config = make_train_config(tmp_path, rewards=[{"name": length_reward}], algorithm={"mask_truncated": True})
    trainer = GRPOTrainer(config)
    before = params(trainer)
    trainer.train()
    (row,) = metrics_of(tmp_path)
    assert row["completion/truncated_frac"] == 1.0  # 8 new tokens: the random model never stops
    assert row["loss"] == 0.0 and row["grad_norm"] == 0.0
    assert all(torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())


def test_replay_mixes_earlier_high_variance_groups(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path, rewards=[{"name": length_reward}], algorithm={"replay_groups": 2}, max_steps=3
    )
    trainer = GRPOTrainer(config)
    trainer.train()
    assert [r["replay/groups"] for r in metrics_of(tmp_path)] == [0, 2, 2]
    stds = [std for std, _ in trainer.replay]
    assert stds == sorted(stds, reverse=True) and len(stds) == 6
    # kept with the old log-probs of their first update: a replayed group's ratio is against the
    # policy that generated it, not the replaying one
    for _, group in trainer.replay:
        mask = group.rollout.completion_mask.bool()
        assert group.old_logprobs is not None and (group.old_logprobs[mask] < 0).all()


def test_entropy_bonus_with_target_controller(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path,
        rewards=[{"name": length_reward}],
        algorithm={"entropy_coef": 0.01, "entropy_target": 100.0, "entropy_coef_step": 0.005},
        max_steps=2,
    )
    GRPOTrainer(config).train()
    coefs = [r["entropy_coef"] for r in metrics_of(tmp_path)]
    assert coefs == pytest.approx([0.01, 0.015])  # entropy is far below 100 nats: the bonus grows


def test_chord_auxiliary_sft_loss(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path,
        rewards=[{"name": length_reward}],
        algorithm={"sft_coef": 0.5, "sft_coef_end": 0.1, "sft_decay_steps": 2, "sft_token_weighting": "p(1-p)"},
        max_steps=3,
    )
    GRPOTrainer(config).train()
    rows = metrics_of(tmp_path)
    assert [r["sft/coef"] for r in rows] == pytest.approx([0.5, 0.3, 0.1])
    assert all(r["sft/loss"] > 0 for r in rows)


def test_staged_curriculum_draws_within_the_stage(tmp_path, make_train_config, length_reward, grounding_data):
    config = make_train_config(
        tmp_path,
        rewards=[{"name": length_reward}],
        data={"curriculum": {"name": "staged", "max_difficulty": [1, 3], "until": [2]}},
        max_steps=3,
        rollouts_every=1,
    )
    GRPOTrainer(config).train()
    difficulty = {}
    for line in grounding_data.train.read_text().splitlines():
        sample = json.loads(line)
        difficulty[sample["id"]] = sample["meta"]["difficulty"]
    seen = {}
    for line in (tmp_path / "rollouts.jsonl").read_text().splitlines():
        row = json.loads(line)
        seen.setdefault(row["step"], set()).add(difficulty[row["prompt_id"]])
    assert seen[1] == {1} and seen[2] == {1}  # stage 1: one-shape scenes only


def test_adarft_resumes_its_target(tmp_path, make_train_config, length_reward):
    curriculum = {"name": "adarft", "eta": 1.0, "beta": 0.5, "reward_key": "reward/mean"}
    config = make_train_config(
        tmp_path / "a", rewards=[{"name": length_reward}], data={"curriculum": curriculum}, max_steps=2, save_every=1
    )
    trainer = GRPOTrainer(config)
    assert trainer.stream.curriculum.target == 1.0
    trainer.train()
    target = trainer.stream.curriculum.target
    assert target == 3.0  # length rewards are far above beta: the target climbs to the hardest
    resumed = GRPOTrainer(config, resume=True)
    assert resumed.stream.state_dict() == trainer.stream.state_dict()
