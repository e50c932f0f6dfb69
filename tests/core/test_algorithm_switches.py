"""Each RFT switch of issue 8 against its formula, on small hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from mmrft.algorithms.advantages import ADVANTAGES
from mmrft.algorithms.chord import sft_coef_at, weighted_sft_loss
from mmrft.algorithms.curriculum import AdaRFT, Staged
from mmrft.algorithms.filtering import informative_groups
from mmrft.algorithms.losses import KL_ESTIMATORS, LOSS_AGGREGATIONS, clipped_surrogate, entropy_bonus_coef

NAN = float("nan")
# Two groups of three, interleaved: group 0 = rows 0, 2, 4 -> [1, 3, 5]; group 1 = rows 1, 3, 5 -> [0, 0, 6].
REWARDS = torch.tensor([1.0, 0.0, 3.0, 0.0, 5.0, 6.0])
GROUPS = torch.tensor([0, 1, 0, 1, 0, 1])


def test_grpo_std_scales():
    adv = ADVANTAGES.get("grpo")
    # group 0: mean 3, std 2; group 1: mean 2, std sqrt(12)
    s1 = math.sqrt(12.0)
    torch.testing.assert_close(
        adv(REWARDS, GROUPS, eps=0.0), torch.tensor([-1.0, -2 / s1, 0.0, -2 / s1, 1.0, 4 / s1])
    )
    torch.testing.assert_close(
        adv(REWARDS, GROUPS, std_scale="none"), torch.tensor([-2.0, -2.0, 0.0, -2.0, 2.0, 4.0])
    )
    batch_std = REWARDS.std().item()  # unbiased std of all six rewards
    torch.testing.assert_close(
        adv(REWARDS, GROUPS, std_scale="batch", eps=0.0),
        torch.tensor([-2.0, -2.0, 0.0, -2.0, 2.0, 4.0]) / batch_std,
    )
    with pytest.raises(ValueError, match="std_scale must be one of group, batch, none"):
        adv(REWARDS, GROUPS, std_scale="global")


def test_dr_grpo_is_centred_without_std():
    torch.testing.assert_close(
        ADVANTAGES.get("dr_grpo")(REWARDS, GROUPS), torch.tensor([-2.0, -2.0, 0.0, -2.0, 2.0, 4.0])
    )


def test_rloo_baseline_leaves_each_completion_out():
    adv = ADVANTAGES.get("rloo")(REWARDS, GROUPS)
    # row 0: 1 - mean(3, 5) = -3; row 1: 0 - mean(0, 6) = -3; row 5: 6 - mean(0, 0) = 6
    torch.testing.assert_close(adv, torch.tensor([-3.0, -3.0, 0.0, -3.0, 3.0, 6.0]))


def test_reinforce_pp_normalises_over_the_batch_not_the_group():
    adv = ADVANTAGES.get("reinforce_pp")(REWARDS, GROUPS, eps=0.0)
    expected = (REWARDS - REWARDS.mean()) / REWARDS.std()
    torch.testing.assert_close(adv, expected)
    assert abs(adv.mean().item()) < 1e-6


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_estimators_ignore_nan_and_zero_variance(name):
    rewards = torch.tensor([1.0, NAN, 3.0, 2.0, 2.0, 2.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    adv = ADVANTAGES.get(name)(rewards, groups)
    assert adv[1] == 0 and not adv.isnan().any()
    if name != "reinforce_pp":  # group baselines: a constant group learns nothing
        assert torch.equal(adv[3:], torch.zeros(3))
        assert adv[0] < 0 < adv[2] and abs(adv[0] + adv[2]) < 1e-6


def test_clip_higher_is_asymmetric():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.25]]))
    old = torch.zeros(1, 3)
    loss, clipped = clipped_surrogate(logp, old, torch.tensor([1.0]), epsilon_low=0.2, epsilon_high=0.28)
    # A > 0: ratio 1.5 clipped to 1.28; 0.5 is not clipped from below (min picks 0.5); 1.25 stays.
    torch.testing.assert_close(loss, -torch.tensor([[1.28, 0.5, 1.25]]))
    assert clipped.tolist() == [[True, False, False]]


def test_dual_clip_bounds_negative_advantage_loss():
    logp = torch.log(torch.tensor([[5.0, 2.0, 0.5]]))
    old = torch.zeros(1, 3)
    adv = torch.tensor([-1.0])
    plain, _ = clipped_surrogate(logp, old, adv)
    torch.testing.assert_close(plain, torch.tensor([[5.0, 2.0, 0.8]]))  # -min(r A, clip(r) A)
    dual, clipped = clipped_surrogate(logp, old, adv, dual_clip=3.0)
    torch.testing.assert_close(dual, torch.tensor([[3.0, 2.0, 0.8]]))  # capped at -c A = 3
    assert clipped.tolist() == [[True, False, True]]
    pos, _ = clipped_surrogate(logp, old, torch.tensor([1.0]), dual_clip=3.0)
    torch.testing.assert_close(pos, -torch.tensor([[1.2, 1.2, 0.5]]))  # A > 0 untouched by dual clip
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        clipped_surrogate(logp, old, adv, dual_clip=1.0)


def test_kl_estimators_match_their_formulas():
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.4)])
    k1 = KL_ESTIMATORS.get("k1")(logp, ref)
    k2 = KL_ESTIMATORS.get("k2")(logp, ref)
    k3 = KL_ESTIMATORS.get("k3")(logp, ref)
    torch.testing.assert_close(k1, torch.tensor([math.log(2), math.log(0.5)]))
    torch.testing.assert_close(k2, torch.tensor([0.5 * math.log(2) ** 2, 0.5 * math.log(0.5) ** 2]))
    # k3 = ratio - log ratio - 1 with ratio = ref / p: 0.5 and 2
    torch.testing.assert_close(k3, torch.tensor([0.5 - math.log(0.5) - 1, 2 - math.log(2) - 1]))


def test_aggregations_on_hand_computed_values():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert LOSS_AGGREGATIONS.get("token_mean")(per_token, mask).item() == pytest.approx(10 / 4)
    assert LOSS_AGGREGATIONS.get("seq_mean_token_mean")(per_token, mask).item() == pytest.approx((2 + 4) / 2)
    sum_norm = LOSS_AGGREGATIONS.get("seq_mean_token_sum_norm")
    assert sum_norm(per_token, mask, max_tokens=8).item() == pytest.approx((6 / 8 + 4 / 8) / 2)
    assert sum_norm(per_token, mask).item() == pytest.approx((6 / 4 + 4 / 4) / 2)  # padded width without a cap


def test_zero_variance_filter_uses_what_it_is_given():
    task = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.0, NAN, 1.0, 1.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    # group 0 constant; group 1 varies; group 2 has one NaN and two equal values
    assert informative_groups(task, groups) == [1]
    total = task + torch.tensor([0.1, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert informative_groups(total, groups) == [0, 1]  # a format reward would keep group 0


def test_entropy_controller_moves_toward_target():
    assert entropy_bonus_coef(0.01, 0.3, None, 0.005, 0.05) == 0.01  # fixed without a target
    assert entropy_bonus_coef(0.01, 0.3, 0.5, 0.005, 0.05) == pytest.approx(0.015)  # below target: up
    assert entropy_bonus_coef(0.01, 0.7, 0.5, 0.005, 0.05) == pytest.approx(0.005)  # above: down
    assert entropy_bonus_coef(0.002, 0.7, 0.5, 0.005, 0.05) == 0.0  # never negative
    assert entropy_bonus_coef(0.049, 0.1, 0.5, 0.005, 0.05) == 0.05  # capped


def test_chord_schedule_and_token_weights():
    assert sft_coef_at(0, 0.5, 0.1, 100) == 0.5
    assert sft_coef_at(50, 0.5, 0.1, 100) == pytest.approx(0.3)
    assert sft_coef_at(500, 0.5, 0.1, 100) == pytest.approx(0.1)
    assert sft_coef_at(500, 0.5, None, 100) == 0.5
    logp = torch.log(torch.tensor([[0.5, 0.9, 1.0]])).requires_grad_()
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    plain = weighted_sft_loss(logp, mask, 2, "none")
    assert plain.item() == pytest.approx(-(math.log(0.5) + math.log(0.9)) / 2)
    phi = weighted_sft_loss(logp, mask, 2, "p(1-p)")
    assert phi.item() == pytest.approx(-(0.25 * math.log(0.5) + 0.09 * math.log(0.9)) / 2)
    phi.backward()  # the weight is detached: d/dlogp = -phi / num_tokens
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.125, -0.045, 0.0]]))


def test_adarft_target_follows_reward():
    cur = AdaRFT(d_min=1, d_max=3, eta=0.5, alpha=2.0, beta=0.5)
    assert cur.target == 1
    cur.observe(1, 0.9)  # success above beta: harder
    assert cur.target == pytest.approx(1 + 0.5 * math.tanh(0.8))
    cur.observe(2, 0.3)  # below beta: easier
    assert cur.target == pytest.approx(1 + 0.5 * math.tanh(0.8) + 0.5 * math.tanh(-0.4))
    cur.observe(3, 0.0)
    assert cur.target == 1  # clipped to the easiest difficulty present
    for _ in range(50):
        cur.observe(3, 1.0)
    assert cur.target == 3  # clipped to the hardest difficulty present


def test_staged_curriculum_windows():
    cur = Staged(d_min=1, d_max=3, max_difficulty=(1, 2, 3), until=(10, 20))
    assert [cur.window(s) for s in (0, 9, 10, 19, 20, 500)] == [(1, 1), (1, 1), (1, 2), (1, 2), (1, 3), (1, 3)]
    with pytest.raises(ValueError, match="one more max_difficulty than until"):
        Staged(d_min=1, d_max=3, max_difficulty=(1, 2), until=(10, 20))
