"""Each RFT switch changes what the trainer computes: values only that switch produces.

tests/core/test_algorithm_runs.py shows that every switch trains; these tests show that the
trainer obeys it. Each builds a GRPOTrainer on the tiny Qwen2.5-VL, samples one real batch
(2 prompts x G=4, 8 new tokens), then fixes its rewards, completion lengths, old or reference
log-probs by hand, and checks the advantages of ``assign_advantages`` and the loss of
``update`` against numbers worked out in the comments. On the first update the training
forward's log-probs are the old policy's (ratio 1) unless a test sets ``old_logprobs``.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from mmrft.training import GRPOTrainer

G = 4
# Rewards per group, in row order within the group.
REWARDS = ([0.0, 1.0, 2.0, 5.0], [1.0, 1.0, 3.0, 7.0])  # group means 2 and 3
# Centred: [-2, -1, 0, 3] and [-2, -2, 0, 4]; unbiased variances 14/3 and 8.
CENTRED = [-2.0, -1.0, 0.0, 3.0, -2.0, -2.0, 0.0, 4.0]


def make_trainer(tmp_path, make_train_config, **overrides) -> GRPOTrainer:
    overrides.setdefault("rewards", [{"name": "format_nothink"}])  # replaced by the fixed rewards below
    return GRPOTrainer(make_train_config(tmp_path, **overrides))


def fixed_batch(trainer: GRPOTrainer, lengths: list[int] | None = None):
    """One real sampled batch, rows ordered group by group, with REWARDS and the given completion lengths."""
    timings = {"prepare_s": 0.0, "generate_s": 0.0, "reward_s": 0.0}
    parts, _, _ = trainer.collect(trainer.stream.next_batch(2), timings)
    (part,) = parts
    rollout = part.rollout
    assert rollout.completion_mask.sum(1).tolist() == [8] * 8  # a random tiny model never stops in 8 tokens
    rows = rollout.rows_of([0, 1])
    rewards = torch.empty(len(rollout))
    rewards[rows] = torch.tensor([*REWARDS[0], *REWARDS[1]])
    part.rewards = part.task_rewards = rewards
    if lengths is not None:  # as if row i had stopped after lengths[i] tokens
        for row, length in zip(rows.tolist(), lengths, strict=True):
            rollout.completion_mask[row, length:] = 0
            rollout.completion_ids[row, length:] = trainer.policy.pad_id
            rollout.logprobs[row, length:] = 0.0
            rollout.truncated[row] = length == 8
    return part, rows


def by_row(part, rows) -> list[float]:
    """The part's advantages in the group-by-group order of ``rows``."""
    return part.advantages[rows].tolist()


# -- advantage estimators ------------------------------------------------------------------------
S0, S1 = math.sqrt(14 / 3), math.sqrt(8.0)
EPS = 1e-4
# REINFORCE++: batch mean 20 / 8 = 2.5; deviations below; unbiased batch variance 40 / 7.
BATCH_DEV = [-2.5, -1.5, -0.5, 2.5, -1.5, -1.5, 0.5, 4.5]
EXPECTED_ADVANTAGES = {
    "grpo": [c / (S0 + EPS) for c in CENTRED[:4]] + [c / (S1 + EPS) for c in CENTRED[4:]],
    "dr_grpo": CENTRED,
    "rloo": [c * 4 / 3 for c in CENTRED],  # r_i - mean of the other three = 4/3 (r_i - mean)
    "reinforce_pp": [d / (math.sqrt(40 / 7) + EPS) for d in BATCH_DEV],
}


@pytest.mark.parametrize("estimator", sorted(EXPECTED_ADVANTAGES))
def test_advantage_estimator_sets_the_advantages(tmp_path, make_train_config, estimator):
    trainer = make_trainer(tmp_path, make_train_config, algorithm={"advantage": estimator})
    part, rows = fixed_batch(trainer)
    trainer.assign_advantages([part])
    assert by_row(part, rows) == pytest.approx(EXPECTED_ADVANTAGES[estimator], abs=1e-6)
    others = [name for name, adv in EXPECTED_ADVANTAGES.items() if name != estimator]
    assert all(by_row(part, rows) != pytest.approx(EXPECTED_ADVANTAGES[o], abs=1e-3) for o in others)


def test_std_scale_overrides_the_estimators_default(tmp_path, make_train_config):
    # dr_grpo divided by each group's std is grpo's advantage.
    trainer = make_trainer(tmp_path, make_train_config, algorithm={"advantage": "dr_grpo", "std_scale": "group"})
    part, rows = fixed_batch(trainer)
    trainer.assign_advantages([part])
    assert by_row(part, rows) == pytest.approx(EXPECTED_ADVANTAGES["grpo"], abs=1e-6)


# -- loss aggregation ----------------------------------------------------------------------------
LENGTHS = [8, 4, 2, 6, 8, 8, 1, 3]  # 40 tokens
ADVANTAGES = [1.0, 2.0, 0.0, -1.0, 0.5, 0.0, 3.0, -2.0]  # sum 3.5; sum of A_i * L_i = 11
# At ratio 1 every token's loss is -A_i, so a row sums to -A_i L_i and averages to -A_i.
EXPECTED_LOSS = {
    "token_mean": -11 / 40,  # all tokens of the batch / their number
    "seq_mean_token_mean": -3.5 / 8,  # mean over the 8 rows of each row's token mean
    "seq_mean_token_sum_norm": -11 / (8 * 8),  # each row's token sum / max_new_tokens (8), mean over rows
}


@pytest.mark.parametrize("aggregation", sorted(EXPECTED_LOSS))
def test_loss_aggregation_sets_the_loss(tmp_path, make_train_config, aggregation):
    trainer = make_trainer(tmp_path, make_train_config, algorithm={"loss_aggregation": aggregation})
    part, rows = fixed_batch(trainer, LENGTHS)
    part.advantages = torch.empty(len(part.rollout))
    part.advantages[rows] = torch.tensor(ADVANTAGES)
    metrics = trainer.update([part])
    assert metrics["loss"] == pytest.approx(EXPECTED_LOSS[aggregation], abs=1e-5)
    assert metrics["clip_frac"] == 0.0


# -- KL placement ---------------------------------------------------------------------------------
BETA = 0.25
# The reference's log-prob of every token of a row is the policy's + D[i], so k1 = logp - ref = -D[i]
# per token and a row's summed KL is -8 D[i].
D = [0.5, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("kl_in", ["loss", "reward"])
def test_kl_placement(tmp_path, make_train_config, kl_in):
    trainer = make_trainer(
        tmp_path,
        make_train_config,
        algorithm={"advantage": "dr_grpo", "beta": BETA, "kl_estimator": "k1", "kl_in": kl_in},
    )
    part, rows = fixed_batch(trainer)
    part.ref_logprobs = part.rollout.logprobs.clone()
    part.ref_logprobs[rows] += torch.tensor(D).unsqueeze(1) * part.rollout.completion_mask[rows]
    trainer.assign_advantages([part])
    metrics = trainer.update([part])
    assert metrics["kl"] == pytest.approx(-sum(D) / 8, abs=1e-5)  # token mean of k1
    if kl_in == "reward":
        # r_i - beta * (-8 D_i) = r_i + 2 D_i: groups [1, 1, 2, 4] and [1, 1, 3, 9], centred:
        assert by_row(part, rows) == pytest.approx([-1.0, -1.0, 0.0, 2.0, -2.5, -2.5, -0.5, 5.5], abs=1e-6)
        # Centred advantages at ratio 1 over rows of equal length: the surrogate's token mean is 0.
        assert metrics["loss"] == pytest.approx(0.0, abs=1e-5)
    else:
        assert by_row(part, rows) == pytest.approx(CENTRED, abs=1e-6)
        # 0 from the surrogate + beta * the token mean of k1.
        assert metrics["loss"] == pytest.approx(BETA * -sum(D) / 8, abs=1e-5)


# -- dual clip ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dual_clip", [None, 3.0])
def test_dual_clip_bounds_the_negative_advantage_loss(tmp_path, make_train_config, dual_clip):
    trainer = make_trainer(tmp_path, make_train_config, algorithm={"advantage": "dr_grpo", "dual_clip": dual_clip})
    part, rows = fixed_batch(trainer)
    # The old policy gave every sampled token a fifth of the probability the policy gives it now:
    # every ratio is 5 (old_logprobs, once set, are what the trainer's updates compare against).
    part.old_logprobs = part.rollout.logprobs - math.log(5.0) * part.rollout.completion_mask
    trainer.assign_advantages([part])
    metrics = trainer.update([part])
    # Advantages CENTRED. A > 0: -min(5 A, 1.2 A) = -1.2 A (rows 3, 7: -3.6, -4.8). A < 0: -min(5 A, 1.2 A)
    # = 5 |A| (rows 0, 1, 4, 5: 10, 5, 10, 10); dual clip c = 3 bounds it at 3 |A| (6, 3, 6, 6).
    # Every row has 8 tokens, so the token mean is the mean of the 8 rows' values.
    if dual_clip is None:
        assert metrics["loss"] == pytest.approx((10 + 5 + 10 + 10 - 3.6 - 4.8) / 8, abs=1e-4)  # 3.325
        assert metrics["clip_frac"] == pytest.approx(2 / 8)  # only the positive-advantage rows' tokens
    else:
        assert metrics["loss"] == pytest.approx((6 + 3 + 6 + 6 - 3.6 - 4.8) / 8, abs=1e-4)  # 1.575
        assert metrics["clip_frac"] == pytest.approx(6 / 8)  # and the dual-clipped negative ones


# -- staged curriculum ------------------------------------------------------------------------------
def test_staged_curriculum_stage_two_admits_harder_samples(tmp_path, make_train_config, grounding_data):
    config = make_train_config(
        tmp_path,
        rewards=[{"name": "format_nothink"}],
        data={"curriculum": {"name": "staged", "max_difficulty": [1, 3], "until": [1]}},
        generation={"num_generations": 2, "max_new_tokens": 2},
        batch_size=4,
        max_steps=3,
        rollouts_every=1,
    )
    trainer = GRPOTrainer(config)
    assert trainer.stream.curriculum.window(0) == (1.0, 1.0)
    trainer.train()
    assert trainer.stream.curriculum.window(trainer.stream.step) == (1.0, 3.0)
    difficulty = {}
    for line in grounding_data.train.read_text().splitlines():
        sample = json.loads(line)
        difficulty[sample["id"]] = sample["meta"]["difficulty"]
    seen = {}
    for line in (tmp_path / "rollouts.jsonl").read_text().splitlines():
        row = json.loads(line)
        seen.setdefault(row["step"], []).append(difficulty[row["prompt_id"]])
    assert set(seen[1]) == {1}  # stage 1: one-shape scenes only
    stage_two = seen[2] + seen[3]
    assert max(stage_two) > 1 and set(stage_two) <= {1, 2, 3}  # stage 2 draws from every difficulty up to 3
