"""An mmrft reward passed straight to TRL's GRPOTrainer: the calling convention holds end to end."""

import pytest

trl = pytest.importorskip("trl", reason="trl is not installed (pip install 'trl>=1.16'); this test needs it")
datasets = pytest.importorskip("datasets", reason="datasets (installed with trl) is not importable")


def test_grpo_trainer_step_with_mmrft_reward(tmp_path):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mmrft.policies.tiny import build_tokenizer
    from mmrft.rewards import get_reward

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(config)
    dataset = datasets.Dataset.from_dict(
        {"prompt": [f"How many dots? {'.' * k}" for k in range(1, 5)], "solution": [1, 2, 3, 4]}
    )
    calls = []
    count = get_reward("count")

    def count_reward(completions, **columns):  # the mmrft reward, unchanged; the wrapper only records calls
        scores = count(completions, **columns)
        calls.append((list(completions), columns["solution"], scores))
        return scores

    args = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
        max_steps=1, learning_rate=1e-2, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no",
        beta=0.0, seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=model, reward_funcs=[count_reward, get_reward("format")], args=args, train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    assert calls, "TRL never called the mmrft reward"
    completions, solutions, scores = calls[0]
    assert len(completions) == len(solutions) == len(scores) == 4 and set(solutions) <= {1, 2, 3, 4}
    assert all(s in (0.0, 1.0) for s in scores)
    logged = trainer.state.log_history[0]
    assert "rewards/count_reward/mean" in logged and "rewards/format_reward/mean" in logged
