"""Generation log-probs equal training-forward log-probs, on every supported Qwen-VL generation.

DESIGN.md §4: without ``mm_token_type_ids`` (and the matching M-RoPE positions) the training
forward silently disagrees with generation by ~1e-2. Prompts of different lengths exercise the
left padding; several completions per prompt exercise the KV-cache repeat.
"""

from __future__ import annotations

import pytest
import torch

from mmrft.data.jsonl import JsonlDataset

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
EXTRA = ["", " Be precise.", " Look carefully at every shape in the image before you answer the question."]


def varied_samples(path, n: int = 3) -> list[dict]:
    """``n`` samples whose prompts have different token lengths (so the batch is left-padded)."""
    dataset = JsonlDataset(path)
    samples = []
    for i in range(n):
        sample = dataset[i]
        sample["messages"][0]["content"][1]["text"] += EXTRA[i % len(EXTRA)]
        samples.append(sample)
    return samples


def capture_forward_kwargs(model):
    """Record the keyword arguments of every ``model(...)`` call."""
    calls = []
    handle = model.register_forward_pre_hook(lambda mod, args, kwargs: calls.append(kwargs), with_kwargs=True)
    return calls, handle


@pytest.mark.parametrize("arch", ARCHS)
def test_sample_logprobs_equal_training_forward(arch, load_tiny_policy, grounding_data):
    policy = load_tiny_policy(arch)
    policy.model.eval()
    batch = policy.prompts(varied_samples(grounding_data.train))
    lengths = batch.attention_mask.sum(1)
    assert len(set(lengths.tolist())) == 3, f"prompts should differ in length, got {lengths.tolist()}"

    rollout = policy.sample(batch, num_samples=4, max_new_tokens=12, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert rollout.completion_ids.shape[0] == 12
    assert rollout.prompt_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    mask = rollout.completion_mask.bool()
    assert mask.sum() >= 12  # at least one token per completion

    with torch.no_grad():
        logprobs, entropy = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    diff = (logprobs - rollout.logprobs).abs()[mask]
    assert diff.max().item() <= 1e-4, f"{arch}: max |logp_train - logp_gen| = {diff.max().item():.3e}"
    # The sampled tokens' log-probs are real numbers below 0, and entropy is within [0, log V].
    assert (rollout.logprobs[mask] < 0).all()
    vocab = policy.model.config.text_config.vocab_size
    assert (entropy[mask] >= -1e-5).all() and (entropy[mask] <= torch.log(torch.tensor(float(vocab))) + 1e-4).all()
    # Masked-out positions carry exactly zero.
    assert (logprobs[~mask] == 0).all() and (rollout.logprobs[~mask] == 0).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_training_positions_equal_get_rope_index(arch, load_tiny_policy, grounding_data):
    """The M-RoPE positions of [prompt | completion] (given in two forwards: prompts, then completions
    on the prompts' cache) equal the model's own on the full sequence."""
    policy = load_tiny_policy(arch)
    policy.model.eval()
    batch = policy.prompts(varied_samples(grounding_data.train))
    rollout = policy.sample(batch, num_samples=2, max_new_tokens=10, generator=torch.Generator().manual_seed(1))
    calls, handle = capture_forward_kwargs(policy.model)
    try:
        with torch.no_grad():
            policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    finally:
        handle.remove()
    index = rollout.prompt_index
    prompt_call, completion_call = calls  # each prompt once, then the completions on its shared cache
    used = torch.cat([prompt_call["position_ids"][:, index], completion_call["position_ids"]], dim=2)

    input_ids = torch.cat([batch.input_ids[index], rollout.completion_ids], dim=1)
    attention = torch.cat([batch.attention_mask[index], rollout.completion_mask], dim=1)
    mm_types = torch.cat([batch.mm_token_type_ids[index], torch.zeros_like(rollout.completion_ids)], dim=1)
    grids = torch.stack([batch.visuals.grid_thw[i] for p in index.tolist() for i in batch.visual_index[p]])
    expected, _ = policy.model.model.get_rope_index(
        input_ids, mm_token_type_ids=mm_types, image_grid_thw=grids, attention_mask=attention
    )
    assert used.shape == expected.shape == (3, *input_ids.shape)
    keep = attention.bool().unsqueeze(0).expand_as(expected)
    assert torch.equal(used[keep], expected[keep])
    # The image really has 2-D positions (height and width differ from the temporal axis somewhere).
    assert (expected[1][attention.bool()] != expected[2][attention.bool()]).any()


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_sampling_is_deterministic(arch, load_tiny_policy, grounding_data):
    policy = load_tiny_policy(arch)
    policy.model.eval()
    batch = policy.prompts(varied_samples(grounding_data.train))
    first = policy.sample(batch, num_samples=2, max_new_tokens=10, temperature=0.0)
    second = policy.sample(batch, num_samples=2, max_new_tokens=10, temperature=0.0)
    assert torch.equal(first.completion_ids, second.completion_ids)
    assert torch.equal(first.logprobs, second.logprobs)
    assert first.texts == second.texts
    # Greedy: both samples of a prompt are the same completion.
    assert torch.equal(first.completion_ids[0::2], first.completion_ids[1::2])
    # Greedy log-probs (of softmax at T=1) match the training forward too.
    with torch.no_grad():
        logprobs, _ = policy.token_logprobs(batch, first.prompt_index, first.completion_ids, first.completion_mask)
    mask = first.completion_mask.bool()
    assert (logprobs - first.logprobs).abs()[mask].max().item() <= 1e-4
