"""A user reward that raises, hangs, or returns the wrong length or type never stops GRPO training (unless asked to)."""

from __future__ import annotations

import json
import math

import pytest

from mmrft.rewards import RewardError
from mmrft.training.grpo import GRPOTrainer

BROKEN = '''
import time

def raises(completions, **columns):
    raise ValueError("boom")

def half_garbage(completions, **columns):
    return [float(len(c)) if i % 2 else "not a number" for i, c in enumerate(completions)]

def short(completions, **columns):
    return [1.0] * (len(completions) - 1)

def not_a_list(completions, **columns):
    return {"score": 1.0}

def hangs(completions, **columns):
    time.sleep(5)
    return [1.0] * len(completions)
'''


@pytest.fixture
def broken_rewards(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    return path


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_faulty_rewards_are_contained_and_counted(tmp_path, make_train_config, length_reward, broken_rewards):
    rewards = [
        {"name": length_reward},
        {"name": f"{broken_rewards}:raises"},
        {"name": f"{broken_rewards}:half_garbage", "on_error": "zero"},
        {"name": f"{broken_rewards}:hangs", "timeout_s": 0.2},
        {"name": f"{broken_rewards}:short"},
        {"name": f"{broken_rewards}:not_a_list", "on_error": "zero"},
    ]
    config = make_train_config(tmp_path / "run", rewards=rewards, max_steps=2)
    GRPOTrainer(config).train()
    rows = _metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2]
    completions = 2 * 4  # batch 2 x G 4
    for row in rows:
        assert row[f"reward/{broken_rewards}:raises/errors"] == completions
        assert row[f"reward/{broken_rewards}:half_garbage/errors"] == completions // 2
        assert row[f"reward/{broken_rewards}:hangs/errors"] == completions
        assert row[f"reward/{broken_rewards}:short/errors"] == completions  # wrong length: every item fails
        assert row[f"reward/{broken_rewards}:not_a_list/errors"] == completions
        assert row[f"reward/{broken_rewards}:not_a_list/mean"] == 0.0  # on_error zero
        assert row[f"reward/{length_reward}/errors"] == 0
        assert math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"])  # the run trained on the working reward
        assert row["reward/unscored"] == 0  # the length reward, a task reward, scored every completion


def test_on_error_raise_stops_with_the_reward_named(tmp_path, make_train_config, broken_rewards):
    config = make_train_config(tmp_path / "run", rewards=[{"name": f"{broken_rewards}:raises", "on_error": "raise"}])
    with pytest.raises(RewardError, match="raises"):
        GRPOTrainer(config).train()
