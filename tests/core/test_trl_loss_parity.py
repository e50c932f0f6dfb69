"""mmrft's policy loss equals TRL's GRPOTrainer._compute_loss (trl 1.16) for grpo, bnpo, dr_grpo and dapo.

TRL's own method runs unmodified; only its model forward is replaced by the fixed log-probs
both sides are given, so the comparison covers ratio, clipping, KL and aggregation.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from mmrft.algorithms.losses import KL_ESTIMATORS, LOSS_AGGREGATIONS, clipped_surrogate

trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer", reason="trl is not installed (pip install -e '.[dev]')")
accelerate = pytest.importorskip("accelerate")

MMRFT_AGGREGATION = {
    "grpo": "seq_mean_token_mean",
    "bnpo": "token_mean",
    "dapo": "token_mean",
    "dr_grpo": "seq_mean_token_sum_norm",
}
MAX_LEN = 7


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    n, t = 6, MAX_LEN
    logps = (-torch.rand(n, t, generator=g) * 3).requires_grad_()
    old = logps.detach() + 0.4 * torch.randn(n, t, generator=g)  # ratios well outside [0.8, 1.28]
    ref = logps.detach() + 0.3 * torch.randn(n, t, generator=g)
    lengths = torch.tensor([7, 3, 5, 1, 6, 2])
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).float()
    adv = torch.randn(n, generator=g)
    return logps, old, ref, mask, adv


def _trl_loss(loss_type, logps, old, ref, mask, adv, beta, eps_low, eps_high):
    trainer = object.__new__(trl_grpo.GRPOTrainer)
    trainer.__dict__.update(
        loss_type=loss_type,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        beta=beta,
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
        importance_sampling_level="token",
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        aux_loss_enabled=False,
        _entropy_bonus_enabled=False,
        max_completion_length=MAX_LEN,
        current_gradient_accumulation_steps=1,
        model=SimpleNamespace(training=True),
        accelerator=accelerate.Accelerator(cpu=True),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    trainer._get_per_token_logps_and_entropies = lambda *args, **kwargs: (logps, torch.zeros_like(logps), None)
    n = logps.shape[0]
    inputs = {
        "prompt_ids": torch.zeros(n, 1, dtype=torch.long),
        "prompt_mask": torch.ones(n, 1, dtype=torch.long),
        "completion_ids": torch.zeros(n, MAX_LEN, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum(),
    }
    return trainer._compute_loss(None, inputs)


def _mmrft_loss(loss_type, logps, old, ref, mask, adv, beta, eps_low, eps_high):
    per_token, _ = clipped_surrogate(logps, old, adv, eps_low, eps_high)
    if beta:
        per_token = per_token + beta * KL_ESTIMATORS.get("k3")(logps, ref)
    aggregate = LOSS_AGGREGATIONS.get(MMRFT_AGGREGATION[loss_type])
    return aggregate(per_token, mask, num_tokens=mask.sum().item(), num_sequences=float(len(mask)), max_tokens=MAX_LEN)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", sorted(MMRFT_AGGREGATION))
def test_loss_and_gradient_equal_trl(loss_type, beta):
    eps_low, eps_high = (0.2, 0.28) if loss_type == "dapo" else (0.2, 0.2)
    for seed in range(3):
        logps, old, ref, mask, adv = _batch(seed)
        ours = _mmrft_loss(loss_type, logps, old, ref, mask, adv, beta, eps_low, eps_high)
        (our_grad,) = torch.autograd.grad(ours, logps)
        theirs = _trl_loss(loss_type, logps, old, ref, mask, adv, beta, eps_low, eps_high)
        (their_grad,) = torch.autograd.grad(theirs, logps)
        assert abs(ours.item() - theirs.item()) <= 1e-6, (loss_type, seed, ours.item(), theirs.item())
        torch.testing.assert_close(our_grad, their_grad, atol=1e-6, rtol=0)
        assert our_grad.abs().sum() > 0
