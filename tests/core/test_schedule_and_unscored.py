"""Issue 28 parts 1, 2 and 9 through the trainer: schedules count training steps (not optimizer
updates), a time budget completes the schedule, and a completion whose task reward failed is left
out of its group's statistics and of the loss."""

from __future__ import annotations

import json

import pytest
import torch

from mmrft.algorithms.advantages import grpo_advantages
from mmrft.data.jsonl import JsonlDataset
from mmrft.training.grpo import GRPOTrainer


def metrics_of(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_lr_schedule_counts_steps_not_updates(tmp_path, make_train_config):
    peak = 1e-4
    config = make_train_config(
        tmp_path, max_steps=30, algorithm={"num_iterations": 3},
        optim={"lr": peak, "lr_schedule": "linear", "warmup_steps": 4}, generation={"num_generations": 2, "max_new_tokens": 4},
    )
    GRPOTrainer(config).train()
    lrs = [r["lr"] for r in metrics_of(tmp_path)]  # each row: the lr of the next step
    assert len(lrs) == 30
    # warmup: steps 1-4 ran at 1/4, 2/4, 3/4 and 4/4 of the peak
    assert lrs[:3] == pytest.approx([0.5 * peak, 0.75 * peak, peak])
    # linear decay over 30 steps (after 4 of warmup): half the peak after step 17, 0 after the last
    assert lrs[16] == pytest.approx(peak * (1 - (17 - 4) / 26))
    assert lrs[-1] == 0.0 and min(lrs[:-1]) > 0


def test_lr_is_half_the_peak_halfway_with_three_updates_a_step(tmp_path, make_train_config):
    config = make_train_config(
        tmp_path, max_steps=30, algorithm={"num_iterations": 3}, optim={"lr": 1e-4, "lr_schedule": "linear"},
        generation={"num_generations": 2, "max_new_tokens": 4},
    )
    trainer = GRPOTrainer(config)
    trainer.train()
    rows = metrics_of(tmp_path)
    assert rows[14]["step"] == 15 and rows[14]["lr"] == pytest.approx(0.5e-4)
    state = next(iter(trainer.optimizer.state.values()))
    assert int(state["step"]) == 90  # 3 updates a step did run


def test_a_binding_time_budget_ends_the_schedule(tmp_path, make_train_config):
    config = make_train_config(
        tmp_path, max_steps=10_000, max_minutes=0.05, optim={"lr": 1e-4, "lr_schedule": "linear"},
        generation={"num_generations": 2, "max_new_tokens": 4},
    )
    summary = GRPOTrainer(config).train()
    rows = metrics_of(tmp_path)
    assert summary["ended_by"] == "time" and summary["steps"] == len(rows) < 10_000
    assert rows[-1]["lr"] == 0.0  # the schedule completed with the budget
    assert all(a["lr"] > b["lr"] for a, b in zip(rows[1:-1], rows[2:]))  # decaying all along


def test_a_run_that_completes_its_steps_says_so(tmp_path, make_train_config):
    config = make_train_config(tmp_path, max_steps=2, max_minutes=60.0, generation={"num_generations": 2, "max_new_tokens": 4})
    assert GRPOTrainer(config).train()["ended_by"] == "steps"


@pytest.fixture(scope="module")
def half_failing_reward(tmp_path_factory) -> str:
    """A plugin task reward that returns a non-number for every second completion."""
    path = tmp_path_factory.mktemp("user_rewards") / "half_failing.py"
    path.write_text(
        "def half_failing(completions, **columns):\n"
        "    return [float(len(c)) if i % 2 == 0 else 'not a number' for i, c in enumerate(completions)]\n"
    )
    return f"{path}:half_failing"


def test_a_failed_task_reward_is_left_out_of_its_group_and_the_loss(tmp_path, make_train_config, half_failing_reward, grounding_data):
    config = make_train_config(
        tmp_path,
        rewards=[{"name": half_failing_reward}, {"name": "format_nothink", "weight": 0.5, "task": False}],
        generation={"num_generations": 4, "max_new_tokens": 8},
    )
    trainer = GRPOTrainer(config)
    samples = [JsonlDataset(grounding_data.train)[i] for i in range(2)]
    parts, _, metrics = trainer.collect(samples, {"prepare_s": 0.0, "generate_s": 0.0, "reward_s": 0.0})
    (part,) = parts
    failed = torch.arange(8) % 2 == 1
    assert metrics["reward/unscored"] == 4 and metrics[f"reward/{config.rewards[0].name}/errors"] == 4
    assert part.rewards[failed].isnan().all() and part.rewards[~failed].isfinite().all()

    trainer.assign_advantages(parts)
    assert (part.advantages[failed] == 0).all()
    lengths = torch.tensor([float(len(t)) for t in part.rollout.texts])
    formats = part.components["format_nothink"]
    expected = grpo_advantages(lengths[~failed] + 0.5 * formats[~failed], part.rollout.prompt_index[~failed])
    assert torch.allclose(part.advantages[~failed], expected)

    mask = trainer.loss_mask(part)
    assert (mask[failed] == 0).all() and (mask[~failed].sum(1) > 0).all()


def test_a_group_with_one_scored_completion_contributes_nothing(tmp_path, make_train_config, half_failing_reward, grounding_data):
    config = make_train_config(tmp_path, rewards=[{"name": half_failing_reward}], generation={"num_generations": 2, "max_new_tokens": 6})
    trainer = GRPOTrainer(config)
    samples = [JsonlDataset(grounding_data.train)[i] for i in range(2)]
    (part,), _, _ = trainer.collect(samples, {"prepare_s": 0.0, "generate_s": 0.0, "reward_s": 0.0})
    assert part.rewards.isnan().tolist() == [False, True, False, True]
    assert trainer.loss_mask(part).sum() == 0  # each group has one scored completion
    trainer.assign_advantages([part])
    assert (part.advantages == 0).all()
    metrics = trainer.update([part])
    assert metrics["loss"] == 0.0 and metrics["grad_norm"] == 0.0
