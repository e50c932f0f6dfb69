"""LoRA through PEFT: only adapters train, checkpoints load as plain models, resume is exact."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from mmrft.data.jsonl import JsonlDataset
from mmrft.training import GRPOTrainer
from tests.core.test_resume import assert_same_weights, run_straight_and_resumed

LORA = {"lora_rank": 4, "lora_alpha": 8.0}


def test_only_language_model_adapters_train(tmp_path, make_train_config, length_reward):
    trainer = GRPOTrainer(make_train_config(tmp_path, rewards=[{"name": length_reward}], model=LORA, max_steps=2, optim={"lr": 1e-2}))
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n and "language_model" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    for name, p in trainer.model.named_parameters():
        changed = not torch.equal(p.detach(), before[name])
        assert changed == (name in trainable), name


def test_checkpoint_is_a_plain_model_with_the_adapters_merged(tmp_path, make_train_config, length_reward, grounding_data):
    trainer = GRPOTrainer(make_train_config(tmp_path, rewards=[{"name": length_reward}], model=LORA, max_steps=2, optim={"lr": 1e-2}))
    trainer.train()
    checkpoint = tmp_path / "checkpoints" / "step-000002"
    assert (checkpoint / "adapter" / "adapter_model.safetensors").is_file()
    merged = AutoModelForImageTextToText.from_pretrained(checkpoint)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    data = JsonlDataset(grounding_data.train)
    policy = trainer.policy
    batch = policy.prompts([data[0], data[1]])
    rollout = policy.sample(batch, 2, 6, 1.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
        theirs, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask, model=merged)
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert any(p.abs().sum() > 0 for n, p in trainer.model.named_parameters() if "lora_B" in n)  # adapters moved


def test_lora_resume_matches_uninterrupted_run(tmp_path, make_train_config, length_reward):
    straight, resumed, m_straight, m_resumed = run_straight_and_resumed(
        tmp_path, make_train_config, GRPOTrainer, rewards=[{"name": length_reward}], model=LORA, optim={"lr": 1e-2}
    )
    for step in (1, 2, 3, 4):
        for key in ("reward/mean", "loss", "grad_norm"):
            assert m_resumed[step][key] == pytest.approx(m_straight[step][key], abs=1e-6), (step, key)
    assert_same_weights(straight, resumed)
    report = json.loads((tmp_path / "resumed" / "checkpoints" / "step-000004" / "adapter" / "adapter_config.json").read_text())
    assert report["r"] == 4
