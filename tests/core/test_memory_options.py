"""Memory options: gradient checkpointing changes no result; freeze flags fix exactly their parts; peak memory is logged."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mmrft.data.jsonl import JsonlDataset
from mmrft.policies.loading import ModelLoadError, enable_activation_checkpointing, freeze
from mmrft.training import GRPOTrainer


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(arch, load_tiny_policy, grounding_data):
    data = JsonlDataset(grounding_data.train)
    results = []
    for checkpointing in (False, True):
        policy = load_tiny_policy(arch)
        if checkpointing:
            enable_activation_checkpointing(policy.model)
        batch = policy.prompts([data[0], data[1]])
        rollout = policy.sample(batch, 2, 6, 1.0, generator=torch.Generator().manual_seed(0))
        policy.model.train()
        calls = []
        layer = policy.model.model.language_model.layers[0].self_attn  # inside the checkpointed forward
        hook = layer.register_forward_hook(lambda *args: calls.append(1))
        logprobs, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
        forward_calls = len(calls)
        loss = -(logprobs * torch.linspace(-1, 1, len(rollout)).unsqueeze(1)).sum()
        loss.backward()
        hook.remove()
        # Plain: the prompts, then the completions on their shared cache; none in the backward pass.
        # Checkpointing (no cache in training): one forward over prompt + completion, recomputed in the backward.
        assert (forward_calls, len(calls) - forward_calls) == ((1, 1) if checkpointing else (2, 0))
        results.append((loss.item(), {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}))
    (plain_loss, plain), (ckpt_loss, ckpt) = results
    assert plain_loss == pytest.approx(ckpt_loss, abs=1e-5)
    assert plain.keys() == ckpt.keys() and len(plain) > 50
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("flag", ["freeze_vision", "freeze_projector", "freeze_language"])
def test_freeze_flags_fix_exactly_their_parts(tmp_path, make_train_config, length_reward, flag):
    config = make_train_config(tmp_path, rewards=[{"name": length_reward}], model={flag: True})
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()

    def part(name: str) -> str:
        if ".visual." in name or name.startswith("model.visual"):
            return "freeze_projector" if ".merger" in name or "deepstack" in name else "freeze_vision"
        return "freeze_language"

    for name, p in trainer.model.named_parameters():
        changed = not torch.equal(p.detach(), before[name])
        assert changed == (part(name) != flag), name
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert row["mem/peak_gb"] > 0


def test_freezing_everything_is_an_error(load_tiny_policy):
    model = load_tiny_policy("qwen2_5_vl").model
    with pytest.raises(ModelLoadError, match="every part of the model is frozen"):
        freeze(model, vision=True, projector=True, language=True)


def test_autocast_bfloat16_runs_the_forwards_in_bf16_and_keeps_float32_weights(tmp_path, make_train_config, length_reward):
    config = make_train_config(tmp_path, rewards=[{"name": length_reward}], model={"autocast": "bfloat16"})
    trainer = GRPOTrainer(config)
    seen = []
    layer = trainer.model.model.language_model.layers[0].mlp.down_proj
    hook = layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    metrics = trainer.train_step(trainer.stream.next_batch(config.batch_size))
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # sampling and training forwards alike
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert math.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0

    # The same completions scored in float32: bf16 rounding moves log-probs only a little.
    policy, samples = trainer.policy, trainer.stream.next_batch(config.batch_size)
    batch = policy.prompts(samples)
    rollout = policy.sample(batch, 4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mixed, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
        policy.autocast = None
        full, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    mask = rollout.completion_mask.bool()
    assert 0 < (mixed - full).abs()[mask].max() < 0.1
