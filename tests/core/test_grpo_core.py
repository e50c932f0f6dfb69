"""The GRPO core on hand-computed tensors: advantages, clipped surrogate, KL, loss aggregation."""

from __future__ import annotations

import math

import pytest
import torch

from mmrft.algorithms.advantages import ADVANTAGES
from mmrft.algorithms.advantages import grpo_advantages as group_advantages
from mmrft.algorithms.losses import (
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    clipped_surrogate,
    kl_k3,
    seq_mean_token_mean,
    seq_mean_token_sum_norm,
    token_mean,
)

NAN = float("nan")


# -- group advantages ----------------------------------------------------------------------
def test_group_advantages_by_explicit_ids_in_any_order():
    # Groups interleaved, not contiguous: group 7 = rows 0, 2, 5; group 3 = rows 1, 3, 4.
    rewards = torch.tensor([1.0, 0.0, 2.0, 4.0, 2.0, 3.0])
    group_ids = torch.tensor([7, 3, 7, 3, 3, 7])
    adv = group_advantages(rewards, group_ids, eps=0.0)
    # Group 7: [1, 2, 3], mean 2, unbiased std 1  -> [-1, 0, 1]
    # Group 3: [0, 4, 2], mean 2, unbiased std 2  -> [-1, 1, 0]
    expected = torch.tensor([-1.0, -1.0, 0.0, 1.0, 0.0, 1.0])
    torch.testing.assert_close(adv, expected)
    for g in (3, 7):
        assert abs(adv[group_ids == g].sum().item()) < 1e-6


def test_group_advantages_eps_and_permutation_invariance():
    rewards = torch.tensor([0.0, 1.0, 0.5, 0.25])
    group_ids = torch.tensor([0, 1, 0, 1])
    adv = group_advantages(rewards, group_ids)  # default eps 1e-4
    std0 = torch.tensor([0.0, 0.5]).std().item()
    std1 = torch.tensor([1.0, 0.25]).std().item()
    expected = torch.tensor([-0.25 / (std0 + 1e-4), 0.375 / (std1 + 1e-4), 0.25 / (std0 + 1e-4), -0.375 / (std1 + 1e-4)])
    torch.testing.assert_close(adv, expected)
    perm = torch.tensor([3, 0, 2, 1])
    torch.testing.assert_close(group_advantages(rewards[perm], group_ids[perm]), adv[perm])


def test_group_advantages_nan_excluded_and_degenerate_groups_zero():
    rewards = torch.tensor([1.0, NAN, 3.0, 5.0, 5.0, 5.0, NAN, 2.0, 9.0])
    group_ids = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3])
    adv = group_advantages(rewards, group_ids, eps=0.0)
    # Group 0: valid [1, 3] (NaN left out of mean and std): mean 2, std sqrt(2).
    s = math.sqrt(2.0)
    expected = torch.tensor([-1 / s, 0.0, 1 / s, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(adv, expected)
    assert not adv.isnan().any()
    # Same with the default eps: a zero-variance group gives exactly 0, not r - mean / eps noise.
    adv = group_advantages(torch.tensor([0.3, 0.3, 0.3, 0.0, 1.0]), torch.tensor([4, 4, 4, 5, 5]))
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert adv[3].item() == pytest.approx(-0.5 / (math.sqrt(0.5) + 1e-4))


def test_group_advantages_registered():
    assert ADVANTAGES.get("grpo") is group_advantages
    assert KL_ESTIMATORS.get("k3") is kl_k3


# -- clipped surrogate ---------------------------------------------------------------------
def test_clipped_surrogate_ratio_one_is_minus_advantage():
    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    loss, clipped = clipped_surrogate(logp, logp.clone(), torch.tensor([0.7]))
    torch.testing.assert_close(loss, torch.full((1, 3), -0.7))
    assert not clipped.any()


def test_clipped_surrogate_hand_values():
    old = torch.zeros(1, 4)
    ratios = torch.tensor([[1.5, 0.5, 1.5, 0.5]])
    logp = ratios.log()
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])  # per-token advantages
    loss, clipped = clipped_surrogate(logp, old, adv, epsilon_low=0.2, epsilon_high=0.28)
    # A > 0, rho 1.5 > 1.28: clipped, loss -1.28.   A > 0, rho 0.5: min(0.5, 0.8) = 0.5, unclipped.
    # A < 0, rho 1.5: min(-1.5, -1.28) = -1.5, unclipped.  A < 0, rho 0.5 < 0.8: clipped, loss 0.8.
    torch.testing.assert_close(loss, torch.tensor([[-1.28, -0.5, 1.5, 0.8]]))
    assert clipped.tolist() == [[True, False, False, True]]


def test_clipped_surrogate_broadcasts_sequence_advantages_and_grads():
    old = torch.tensor([[-1.0, -1.0], [-2.0, -2.0]])
    logp = torch.tensor([[-1.0, -1.0 + math.log(1.1)], [-2.0, -2.0]], requires_grad=True)
    adv = torch.tensor([2.0, -3.0])
    loss, clipped = clipped_surrogate(logp, old, adv)
    torch.testing.assert_close(loss.detach(), torch.tensor([[-2.0, -2.2], [3.0, 3.0]]))
    assert not clipped.any()
    loss.sum().backward()
    # d(-rho A)/d logp = -rho A inside the clip range.
    torch.testing.assert_close(logp.grad, torch.tensor([[-2.0, -2.2], [3.0, 3.0]]))
    # Outside the clip range (rho 2, A > 0) the gradient is zero.
    logp2 = torch.tensor([[math.log(2.0)]], requires_grad=True)
    loss2, _ = clipped_surrogate(logp2, torch.zeros(1, 1), torch.tensor([1.0]))
    loss2.sum().backward()
    assert logp2.grad.item() == 0.0


# -- KL -----------------------------------------------------------------------------------
def test_kl_k3_values():
    logp = torch.tensor([-1.0, -2.0, -0.3])
    assert torch.equal(kl_k3(logp, logp.clone()), torch.zeros(3))
    # delta = ref - logp = log 2: exp(log 2) - log 2 - 1 = 1 - log 2.
    value = kl_k3(torch.tensor([-1.0]), torch.tensor([-1.0 + math.log(2.0)]))
    assert value.item() == pytest.approx(1 - math.log(2.0), abs=1e-6)
    # delta = -1: e^-1 + 1 - 1 = e^-1 ; always >= 0.
    assert kl_k3(torch.tensor([0.0]), torch.tensor([-1.0])).item() == pytest.approx(math.exp(-1), abs=1e-6)
    assert (kl_k3(torch.randn(100), torch.randn(100)) >= 0).all()


# -- aggregation ---------------------------------------------------------------------------
PER_TOKEN = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 100.0, 100.0, 100.0], [5.0, 6.0, 7.0, 8.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])


def test_aggregations_hand_values():
    # token_mean: (1+2+3 + 4 + 5+6+7+8) / 8 = 36 / 8
    assert token_mean(PER_TOKEN, MASK).item() == pytest.approx(4.5)
    # seq_mean_token_mean: mean(2, 4, 6.5) = 12.5 / 3
    assert seq_mean_token_mean(PER_TOKEN, MASK).item() == pytest.approx(12.5 / 3)
    # seq_mean_token_sum_norm: mean(6/4, 4/4, 26/4) = 36 / 12
    assert seq_mean_token_sum_norm(PER_TOKEN, MASK).item() == pytest.approx(3.0)
    assert LOSS_AGGREGATIONS.get("token_mean") is token_mean
    assert LOSS_AGGREGATIONS.get("seq_mean_token_mean") is seq_mean_token_mean
    assert LOSS_AGGREGATIONS.get("seq_mean_token_sum_norm") is seq_mean_token_sum_norm


@pytest.mark.parametrize("name", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_micro_batches_sum_to_full_batch(name):
    aggregate = LOSS_AGGREGATIONS.get(name)
    full = aggregate(PER_TOKEN, MASK)
    counts = {"num_tokens": MASK.sum().item(), "num_sequences": float(MASK.shape[0])}
    parts = [slice(0, 1), slice(1, 3)]
    total = sum(aggregate(PER_TOKEN[s], MASK[s], **counts) for s in parts)
    assert total.item() == pytest.approx(full.item(), abs=1e-6)
    # Without the counts, micro-batch means do not add up (the reason the counts exist).
    if name != "seq_mean_token_sum_norm":
        naive = sum(aggregate(PER_TOKEN[s], MASK[s]) for s in parts)
        assert naive.item() != pytest.approx(full.item(), abs=1e-3)


def test_aggregation_empty_mask_is_zero_not_nan():
    assert token_mean(PER_TOKEN, torch.zeros_like(MASK)).item() == 0.0
    assert seq_mean_token_mean(PER_TOKEN, torch.zeros_like(MASK)).item() == 0.0
