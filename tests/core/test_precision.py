"""Mixed precision that learns (issue 27 parts 1 and 3): float32 master weights with bfloat16
compute move every weight at a GPU learning rate, AdamW on bfloat16 weights is refused, and the
importance ratio of the first update is exactly 1 under autocast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from mmrft.config import ConfigError, load_train_config
from mmrft.training.grpo import GRPOTrainer

ROOT = Path(__file__).resolve().parents[2]
GPU_CONFIG = ROOT / "configs" / "qwen2_5_vl_3b_grounding_gpu.yaml"
BASE = ROOT / "models" / "tiny-qwen2_5_vl-base"


def language_linear_weights(path: Path) -> dict[str, torch.Tensor]:
    """The language model's linear-layer weights of a saved model, as loaded (float32 stays float32)."""
    model = AutoModelForImageTextToText.from_pretrained(path, dtype="auto")
    return {n: p.detach() for n, p in model.model.language_model.named_parameters() if n.endswith("proj.weight")}


def test_the_gpu_configs_precision_moves_every_language_weight(tmp_path, make_train_config, length_reward):
    gpu = load_train_config(GPU_CONFIG).model
    assert (gpu.dtype, gpu.autocast) == ("float32", "bfloat16")
    config = make_train_config(
        tmp_path,
        model={"name_or_path": str(BASE), "dtype": gpu.dtype, "autocast": gpu.autocast, "freeze_vision": gpu.freeze_vision},
        optim={"lr": 1e-6}, max_steps=2, generation={"num_generations": 4, "max_new_tokens": 16},
        rewards=[{"name": length_reward}],  # completions differ in length: every group teaches
    )
    GRPOTrainer(config).train()
    start = language_linear_weights(BASE)
    saved = language_linear_weights(tmp_path / "checkpoints" / "step-000002")
    assert saved.keys() == start.keys() and len(saved) > 0
    assert all(w.dtype == torch.float32 for w in saved.values())  # checkpoints hold the master weights
    moved = sum(int((saved[k] != start[k]).sum()) for k in start)
    total = sum(w.numel() for w in start.values())
    assert moved / total >= 0.99, f"only {moved / total:.2%} of the language model's linear entries moved"


def test_bfloat16_weights_under_full_fine_tuning_are_refused(make_train_config, tmp_path):
    with pytest.raises(ConfigError, match="model.dtype: AdamW on bfloat16 weights"):
        make_train_config(tmp_path, model={"dtype": "bfloat16"}).validate()
    make_train_config(tmp_path, model={"dtype": "bfloat16", "lora_rank": 4}).validate()  # LoRA trains float32 adapters


def test_the_first_update_has_ratio_one_under_bfloat16_autocast(tmp_path, make_train_config, grounding_data, monkeypatch):
    """Whatever the sampler's log-probs (here off by up to 0.05, as a bfloat16 GPU sampler's are),
    the clipped ratio of the first update is taken against the training forward's own log-probs:
    exactly 1, so with a clip range of 1e-6 nothing is clipped."""
    from mmrft.data.jsonl import JsonlDataset
    from mmrft.training import grpo

    ratios = []

    def recording_surrogate(logprobs, old, *args):
        ratios.append((logprobs.detach() - old).exp())
        return clipped_surrogate(logprobs, old, *args)

    clipped_surrogate = grpo.clipped_surrogate
    monkeypatch.setattr(grpo, "clipped_surrogate", recording_surrogate)
    config = make_train_config(
        tmp_path, model={"name_or_path": str(BASE), "autocast": "bfloat16"}, algorithm={"epsilon_low": 1e-6, "epsilon_high": 1e-6},
        generation={"is_cap": 0.0},
    )
    trainer = GRPOTrainer(config)
    samples = [JsonlDataset(grounding_data.train)[i] for i in range(2)]
    (part,), _, _ = trainer.collect(samples, {"prepare_s": 0.0, "generate_s": 0.0, "reward_s": 0.0})
    mask = part.rollout.completion_mask
    part.rollout.logprobs = (part.rollout.logprobs - 0.05 * torch.rand(mask.shape, generator=torch.Generator().manual_seed(0))) * mask
    part.rewards = torch.arange(8.0)  # every completion has an advantage
    trainer.assign_advantages([part])
    metrics = trainer.update([part])
    (ratio,) = ratios
    assert torch.equal(ratio[mask.bool()], torch.ones(int(mask.sum())))
    assert metrics["clip_frac"] == 0.0
    assert 0.01 < metrics["sampler/logprob_abs_diff"] < 0.05  # the mismatch is measured
    assert "sampler/is_weight_mean" not in metrics  # is_cap 0: not corrected


@pytest.mark.parametrize("name", ["qwen2_5_vl_3b_grounding_gpu.yaml", "qwen2_5_vl_7b_grounding_lora_gpu.yaml"])
def test_gpu_config_headers_state_the_estimated_peak(name):
    """The memory a GPU config's header states is what the estimator gives for it (on a CUDA device)."""
    import re

    from mmrft.training.memory import estimate_memory

    path = ROOT / "configs" / name
    stated = float(re.search(r"# Memory: about (\d+) GB at its peak", path.read_text()).group(1))
    assert "ESTIMATED" in path.read_text()  # until a GPU measures it
    peak = estimate_memory(load_train_config(path), "cuda")["peak"] / 1e9
    assert abs(peak - stated) <= 1.0, f"{name}: header says {stated:g} GB, the estimate is {peak:.1f} GB"
