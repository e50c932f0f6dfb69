"""The vision-language-action policy: action tokens, log-prob parity, behaviour cloning, a GRPO step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrft.envs.expert import log_episodes
from mmrft.envs.vector import DrivingVectorEnv
from mmrft.eval.closed_loop import load_action_policy, rollout
from mmrft.policies.vla import ACTION_TOKENS, BINS, TokenActionPolicy, to_bins
from mmrft.training.driving import chunk_starts, expert_batch

CHUNK = 2


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    torch.manual_seed(0)
    return TokenActionPolicy(str(tiny_model_dir("qwen2_5_vl")), CHUNK)


def test_action_tokens_are_added_once_and_bins_round_trip(policy, tmp_path):
    tokenizer = policy.qwen.processor.tokenizer
    assert all(t in tokenizer.get_vocab() for t in ACTION_TOKENS)
    assert policy.model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    values = np.linspace(-1, 1, BINS)
    assert np.allclose(policy.centres.numpy()[to_bins(values)], values)
    assert to_bins(np.array([-3.0, 3.0])).tolist() == [0, BINS - 1]
    policy.save_pretrained(tmp_path)
    again = load_action_policy(tmp_path, CHUNK)  # told apart from a planner checkpoint by its action tokens
    assert isinstance(again, TokenActionPolicy) and torch.equal(again.action_ids, policy.action_ids)


def test_the_prompt_shows_the_frame_at_16_visual_tokens_and_states_the_heading(policy):
    env = DrivingVectorEnv(1, CHUNK)
    obs, _ = env.reset(seed=0, options={"split": "heldout", "indices": [0]})
    batch = policy.prompts(obs)
    assert batch.input_sizes == [(112, 112)]  # the 56-px frame upsampled, as the planner sees it
    tokenizer = policy.qwen.processor.tokenizer
    assert batch.input_ids[0].tolist().count(tokenizer.convert_tokens_to_ids("<|image_pad|>")) == 16
    assert tokenizer.decode(batch.input_ids[0]).endswith(f"yaw {obs['ego'][0, 2]:+.2f}<|im_end|>\n<|im_start|>assistant\n")


def test_sampling_and_training_log_probs_agree_and_ratio_is_one(policy):
    out = rollout(DrivingVectorEnv(4, chunk=CHUNK), policy, {"split": "train", "indices": range(2), "group_size": 2}, seed=0, greedy=False, record=True)
    batch = out["batch"]
    assert batch["logprobs"].shape == (int(batch["alive"].sum()), 2 * CHUNK)
    recomputed, entropy = policy.decision_logprobs(batch["records"])
    assert (recomputed - batch["logprobs"]).abs().max() <= 1e-4
    assert 0 < entropy.item() <= np.log(BINS) + 1e-4  # over the action tokens only
    for _, ids in batch["records"]:
        assert torch.isin(ids, policy.action_ids).all()


def test_rollouts_at_a_lower_temperature_are_scored_at_it(policy):
    policy.temperature = 0.5
    try:
        out = rollout(DrivingVectorEnv(4, chunk=CHUNK), policy, {"split": "train", "indices": range(2), "group_size": 2}, seed=0, greedy=False, record=True)
        batch = out["batch"]
        tempered, tempered_entropy = policy.decision_logprobs(batch["records"])
        assert (tempered - batch["logprobs"]).abs().max() <= 1e-4  # the ratio is 1 at this temperature too
        policy.temperature = 1.0
        plain, entropy = policy.decision_logprobs(batch["records"])
        assert tempered_entropy < entropy
        assert (tempered - plain).abs().max() > 1e-2
    finally:
        policy.temperature = 1.0


def test_behaviour_cloning_raises_the_expert_tokens_likelihood(policy):
    episodes = log_episodes("train", 4, noise=0.0)
    pairs = chunk_starts(episodes, CHUNK)[::7][:8]
    batch = expert_batch(episodes, pairs, CHUNK)
    opt = torch.optim.Adam(policy.parameters(), 3e-3)
    before = policy.imitation_logprobs(*batch).sum(-1).mean().item()
    for _ in range(5):
        loss = -policy.imitation_logprobs(*batch).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert policy.imitation_logprobs(*batch).sum(-1).mean().item() > before + 1.0
