"""Token-budget micro-batches (and trimming padding per micro-batch) change no loss and no gradient."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from mmrft.config import ConfigError
from mmrft.training import GRPOTrainer, SFTTrainer
from mmrft.training.batching import token_budget_batches


def test_token_budget_packs_shortest_first_within_budget():
    lengths, rows = [30, 10, 20, 12, 100], [4, 4, 4, 4, 4]
    batches = token_budget_batches(lengths, rows, budget=130)
    assert batches == [[1, 3], [2], [0], [4]]  # 8 x 12 = 96; 8 x 20 > 130; 8 x 30 > 130; 4 x 100 alone
    assert sorted(p for b in batches for p in b) == list(range(5))
    for batch in batches[:-1]:
        assert sum(rows[p] for p in batch) * max(lengths[p] for p in batch) <= 130


def run_update(trainer, parts) -> tuple[dict, dict]:
    """One optimizer step's metrics and the gradients the optimizer saw."""
    grads, step = {}, trainer.optimizer_step

    def capture() -> float:
        grads.update({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
        return step()

    trainer.optimizer_step = capture
    metrics = trainer.update(parts) if isinstance(trainer, GRPOTrainer) else trainer.train_step(parts)
    trainer.optimizer_step = step
    return metrics, grads


def assert_same(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    assert b[0]["loss"] == pytest.approx(a[0]["loss"], rel=1e-5, abs=1e-6)  # a GRPO loss is ~0 at ratio 1
    assert a[1].keys() == b[1].keys() and len(a[1]) > 50
    for name, grad in a[1].items():
        torch.testing.assert_close(b[1][name], grad, rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_grpo_update_same_with_token_budget(tmp_path, make_train_config, length_reward, aggregation):
    def trainer(**optim):
        config = make_train_config(
            tmp_path / str(optim), batch_size=4, rewards=[{"name": length_reward}],
            generation={"num_generations": 4, "max_new_tokens": 12},
            algorithm={"loss_aggregation": aggregation}, optim={"lr": 1e-3, "max_grad_norm": 0, **optim},
        )  # fmt: skip
        return GRPOTrainer(config)

    whole, packed = trainer(), trainer(micro_batch_tokens=80)
    samples = whole.stream.next_batch(4)
    whole.generator.manual_seed(0)
    scored, _ = whole.generate_and_score(samples, defaultdict(float))
    whole.assign_advantages([scored])
    lengths = scored.rollout.completion_mask.sum(1)
    assert lengths.min() < lengths.max()  # completions of different lengths: trimming has work to do
    assert len(packed.micro_batches(scored)) > 1
    assert_same(run_update(whole, [scored]), run_update(packed, [scored]))


def test_sft_step_same_with_token_budget(tmp_path, make_train_config):
    def trainer(**optim):
        config = make_train_config(tmp_path / str(optim), stage="sft", batch_size=4, optim={"lr": 1e-3, "max_grad_norm": 0, **optim})
        return SFTTrainer(config)

    whole, packed = trainer(), trainer(micro_batch_tokens=100)
    samples = whole.stream.next_batch(4)
    assert_same(run_update(whole, samples), run_update(packed, samples))


def test_token_budget_with_grad_accum_is_a_config_error(tmp_path, make_train_config):
    with pytest.raises(ConfigError, match="micro_batch_tokens"):
        make_train_config(tmp_path, optim={"micro_batch_tokens": 100, "grad_accum": 2}).validate()
