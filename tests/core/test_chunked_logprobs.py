"""The chunked output head gives the full-logits computation's log-probs, entropies and gradients.

Reference: one forward over [prompt | completion] that returns the (N, T, V) logits, then
log_softmax over the whole vocabulary (what mmrft computed before the head ran in chunks).
"""

from __future__ import annotations

import pytest
import torch

from mmrft.policies import logprobs as chunked
from mmrft.policies.logprobs import entropy_of, head_logprobs, head_override

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def full_logits_reference(policy, batch, rollout, temperature):
    """Per-token log-probs and entropies from the full (N, T, V) logits."""
    index, ids, mask = rollout.prompt_index, rollout.completion_ids, rollout.completion_mask
    steps = torch.arange(ids.shape[1])
    positions = (batch.next_position[index].view(1, -1, 1) + steps).expand(3, -1, -1)
    out = policy.model(
        input_ids=torch.cat([batch.input_ids[index], ids], dim=1),
        attention_mask=torch.cat([batch.attention_mask[index], mask], dim=1),
        position_ids=torch.cat([batch.position_ids[:, index], positions], dim=2),
        mm_encoder_outputs=policy._encode(batch, index.tolist()),
        use_cache=False,
        logits_to_keep=ids.shape[1] + 1,
    )
    logp = (out.logits[:, :-1].float() / temperature).log_softmax(-1)
    chosen = logp.gather(2, ids.unsqueeze(-1)).squeeze(-1)
    return chosen * mask, entropy_of(logp) * mask


def gradients(model, loss) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("chunk_elements", [None, 3000])  # the default, and a few rows per chunk
def test_chunked_head_equals_full_logits(arch, chunk_elements, load_tiny_policy, grounding_data, monkeypatch):
    from mmrft.data.jsonl import JsonlDataset

    if chunk_elements is not None:
        monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", chunk_elements)
    policy = load_tiny_policy(arch)
    policy.model.eval()  # no dropout either way; eval keeps both forwards identical
    samples = [JsonlDataset(grounding_data.train)[i] for i in range(2)]
    batch = policy.prompts(samples)
    rollout = policy.sample(batch, num_samples=3, max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    mask = rollout.completion_mask.float()
    assert mask.sum(1).min() < mask.shape[1] or mask.all()  # lengths vary or none stopped
    weights = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0))

    ref_lp, ref_ent = full_logits_reference(policy, batch, rollout, temperature=0.7)
    ref_grads = gradients(policy.model, (ref_lp * weights).sum() + 0.1 * (ref_ent * weights).sum())
    lp, ent = policy.token_logprobs(
        batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask, temperature=0.7, entropy_grad=True
    )
    grads = gradients(policy.model, (lp * weights).sum() + 0.1 * (ent * weights).sum())

    assert (lp - ref_lp).abs().max().item() <= 1e-5
    assert (ent - ref_ent).abs().max().item() <= 1e-5
    assert (lp[mask == 0] == 0).all() and (ent[mask == 0] == 0).all()
    assert grads.keys() == ref_grads.keys() and "lm_head.weight" in grads
    for name, ref in ref_grads.items():
        scale = ref.abs().max().clamp_min(1e-3)
        assert (grads[name] - ref).abs().max().item() <= 1e-5 * scale, name


def test_entropy_has_no_graph_unless_trained_on(load_tiny_policy, grounding_data):
    from mmrft.data.jsonl import JsonlDataset

    policy = load_tiny_policy("qwen2_5_vl")
    batch = policy.prompts([JsonlDataset(grounding_data.train)[0]])
    rollout = policy.sample(batch, num_samples=2, max_new_tokens=6, generator=torch.Generator().manual_seed(0))
    args = (batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    lp, ent = policy.token_logprobs(*args)
    assert lp.requires_grad and not ent.requires_grad
    lp, ent = policy.token_logprobs(*args, entropy_grad=True)
    assert lp.requires_grad and ent.requires_grad


def test_no_chunk_holds_more_than_its_budget(monkeypatch):
    """Every logits tensor the head builds (forward and recomputed backward) has at most
    CHUNK_ELEMENTS values, whatever the number of positions."""
    torch.manual_seed(0)
    vocab, hidden_size, positions = 1000, 16, 257
    head = torch.nn.Linear(hidden_size, vocab, bias=False)
    hidden = torch.randn(positions, hidden_size, requires_grad=True)
    targets = torch.randint(vocab, (positions,))
    monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", 20 * vocab)
    shapes = []
    head.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape)))
    lp, ent = head_logprobs(head, hidden, targets, vocab_size=vocab)
    lp.sum().backward()
    assert lp.shape == ent.shape == (positions,)
    assert max(rows * cols for rows, cols in shapes) <= 20 * vocab
    assert len(shapes) == 2 * 13  # 13 chunks of at most 20 rows, each run again in the backward
    full = (head(hidden.detach()).log_softmax(-1)).gather(1, targets[:, None]).squeeze(1)
    assert torch.allclose(lp, full, atol=1e-6)


def test_head_override_restores_the_module():
    head = torch.nn.Linear(4, 6, bias=False)
    x = torch.randn(2, 4)
    with head_override(head, lambda forward, hidden: forward(hidden).sum(-1)):
        assert head(x).shape == (2,)
    assert head(x).shape == (2, 6) and "forward" not in head.__dict__
