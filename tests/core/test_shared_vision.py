"""Encoding each unique image once, and running each prompt once with its KV cache shared by its
completions, changes nothing numerically.

Reference path: the model's own forward over [prompt | completion] rows with ``pixel_values``
repeated for every row (the vision tower and the prompt run once per completion, as in TRL). The
policy's shared path must give the same log-probs and the same gradients in every parameter.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmrft.data.jsonl import JsonlDataset

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def reference_logprobs(policy, batch, prompt_index, completion_ids, completion_mask):
    """Log-probs from the plain HF forward, each row carrying its own copy of its images."""
    rows = prompt_index.tolist()
    T = completion_ids.shape[1]
    input_ids = torch.cat([batch.input_ids[prompt_index], completion_ids], dim=1)
    attention = torch.cat([batch.attention_mask[prompt_index], completion_mask], dim=1)
    completion_pos = (batch.next_position[prompt_index].view(1, -1, 1) + torch.arange(T).view(1, 1, T)).expand(3, -1, -1)
    position_ids = torch.cat([batch.position_ids[:, prompt_index], completion_pos], dim=2)
    mm_types = torch.cat([batch.mm_token_type_ids[prompt_index], torch.zeros_like(completion_ids)], dim=1)
    images = [i for p in rows for i in batch.visual_index[p]]
    out = policy.model(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=position_ids,
        mm_token_type_ids=mm_types,
        pixel_values=torch.cat([batch.visuals.pixel_values[i] for i in images]),
        image_grid_thw=torch.stack([batch.visuals.grid_thw[i] for i in images]),
        use_cache=False,
    )
    logits = out.logits[:, -T - 1 : -1].float()
    logprobs = F.log_softmax(logits, -1).gather(2, completion_ids.unsqueeze(-1)).squeeze(-1)
    return logprobs * completion_mask


def all_grads(policy) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    policy.model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_vision_matches_per_row_encoding(arch, load_tiny_policy, grounding_data):
    policy = load_tiny_policy(arch)
    policy.model.eval()  # no dropout in these models; eval keeps it explicit
    dataset = JsonlDataset(grounding_data.train)
    samples = [dataset[0], dataset[1]]
    batch = policy.prompts(samples)
    assert len(batch.visuals) == 2
    rollout = policy.sample(batch, num_samples=4, max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(rollout.completion_ids.shape, generator=torch.Generator().manual_seed(1))

    policy.vision_encodes = 0
    shared, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    assert policy.vision_encodes == 2  # 2 prompts x 4 completions: 2 images encoded, not 8
    (shared * weights).sum().backward()
    shared_grads = all_grads(policy)

    reference = reference_logprobs(policy, batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    (reference * weights).sum().backward()
    reference_grads = all_grads(policy)

    torch.testing.assert_close(shared.detach(), reference.detach(), atol=1e-5, rtol=0)
    assert shared_grads.keys() == reference_grads.keys() and len(shared_grads) > 0
    nonzero = 0
    for name, grad in shared_grads.items():
        # float32 summation-order noise scales with the tensor's largest gradient (up to ~7 here):
        # measured differences are ~5e-7 of it; sharing the wrong image would differ by O(1) of it.
        atol = 1e-5 * float(reference_grads[name].abs().max())
        torch.testing.assert_close(grad, reference_grads[name], rtol=1e-4, atol=atol, msg=lambda m, name=name: f"{name}: {m}")
        nonzero += bool(grad.abs().sum() > 0)
    # The loss reaches every part, the tower included: gradients are not trivially equal because both are zero.
    assert any(".visual." in n for n in shared_grads)
    assert nonzero >= len(shared_grads) - 2, f"only {nonzero}/{len(shared_grads)} params got gradient"


def test_vision_encodes_counts_unique_images(load_tiny_policy, grounding_data):
    """Prompts that share an image encode it once; generation and training each encode once."""
    policy = load_tiny_policy("qwen2_5_vl")
    policy.model.eval()
    dataset = JsonlDataset(grounding_data.train)
    same_image = dataset[0]
    same_image["id"] = "copy-of-0"
    same_image["messages"][0]["content"][1]["text"] = "Locate the red circle. Answer with the box as <answer>[x1, y1, x2, y2]</answer>."
    batch = policy.prompts([dataset[0], same_image, dataset[1]])
    assert len(batch.visuals) == 2 and batch.visual_index == [[0], [0], [1]]

    policy.vision_encodes = 0
    rollout = policy.sample(batch, num_samples=4, max_new_tokens=4, generator=torch.Generator().manual_seed(0))
    assert policy.vision_encodes == 2  # one prefill over the 2 unique images for 12 completions
    with torch.no_grad():
        policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    assert policy.vision_encodes == 4


def test_prompt_batch_to_moves_every_tensor(load_tiny_policy, grounding_data):
    """What the policy sends to the model's device: every tensor of the batch, visual banks included."""
    policy = load_tiny_policy("qwen2_5_vl")
    dataset = JsonlDataset(grounding_data.train)
    batch = policy.prompts([dataset[0], dataset[1]])
    assert batch.to(torch.device("cpu")) is batch  # already there: no copy
    moved = batch.to(torch.device("meta"))
    tensors = [moved.input_ids, moved.attention_mask, moved.mm_token_type_ids, moved.position_ids]
    tensors += moved.visuals.pixel_values + moved.visuals.grid_thw
    assert len(moved.visuals) == 2 and all(t.device.type == "meta" for t in tensors)
    assert moved.sample_ids == batch.sample_ids and moved.visual_index == batch.visual_index
    assert batch.input_ids.device.type == "cpu"  # the original is untouched
