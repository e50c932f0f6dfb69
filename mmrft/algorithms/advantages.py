"""Advantage estimators: how one scalar reward per completion becomes its advantage.

Every estimator takes ``rewards`` (N,) — NaN where no reward applies, such rows get advantage 0
and are left out of every mean and std — and explicit ``group_ids`` (N,), never positions.
``std_scale`` divides the centred rewards by the std of their group ("group"), of the whole
batch ("batch") or not at all ("none"); each estimator's default is its paper's.
"""

from __future__ import annotations

import torch

from mmrft.registry import Registry

ADVANTAGES = Registry("advantage estimator")
STD_SCALES = ("group", "batch", "none")


def groups(rewards: torch.Tensor, group_ids: torch.Tensor):
    """Each group's id and its valid (non-NaN) rows, as a boolean mask."""
    valid = ~rewards.isnan()
    for g in group_ids.unique():
        yield int(g), (group_ids == g) & valid


def is_informative(r: torch.Tensor) -> bool:
    """A group teaches something only with two or more members that differ."""
    return r.numel() >= 2 and not bool((r == r[0]).all())


def _scale(adv: torch.Tensor, rewards: torch.Tensor, group_ids: torch.Tensor, std_scale: str, eps: float) -> torch.Tensor:
    if std_scale not in STD_SCALES:
        raise ValueError(f"std_scale must be one of {', '.join(STD_SCALES)}; got {std_scale!r}")
    if std_scale == "group":
        for _, rows in groups(rewards, group_ids):
            if is_informative(rewards[rows]):
                adv[rows] = adv[rows] / (rewards[rows].std() + eps)
    elif std_scale == "batch":
        valid = rewards[~rewards.isnan()]
        if valid.numel() >= 2:
            adv = adv / (valid.std() + eps)
    return adv


def _group_centred(rewards: torch.Tensor, group_ids: torch.Tensor, leave_one_out: bool) -> torch.Tensor:
    adv = torch.zeros_like(rewards)
    for _, rows in groups(rewards, group_ids):
        r = rewards[rows]
        if not is_informative(r):  # exactly 0, also for std_scale="group" with eps == 0
            continue
        n = r.numel()
        adv[rows] = (r - r.mean()) * (n / (n - 1) if leave_one_out else 1.0)
    return adv


@ADVANTAGES.register("grpo")
def grpo_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, std_scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """GRPO (Shao et al. 2024, DeepSeekMath): A_i = (r_i - mean_g r) / (std_g r + eps).

    std is the unbiased sample std (as in TRL). A group with one valid member or zero variance
    gets advantage 0.
    """
    return _scale(_group_centred(rewards, group_ids, False), rewards, group_ids, std_scale, eps)


@ADVANTAGES.register("dr_grpo")
def dr_grpo_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, std_scale: str = "none", eps: float = 1e-4
) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"): A_i = r_i - mean_g r.

    No division by the group std, which over-weights groups that are nearly all right or all
    wrong. Pair it with the ``seq_mean_token_sum_norm`` aggregation (no length normalisation).
    """
    return _scale(_group_centred(rewards, group_ids, False), rewards, group_ids, std_scale, eps)


@ADVANTAGES.register("rloo")
def rloo_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, std_scale: str = "none", eps: float = 1e-4
) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024): A_i = r_i - mean_{j != i} r_j = n/(n-1) (r_i - mean_g r).

    Each completion's baseline is the mean of the other members of its group.
    """
    return _scale(_group_centred(rewards, group_ids, True), rewards, group_ids, std_scale, eps)


@ADVANTAGES.register("reinforce_pp")
def reinforce_pp_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, std_scale: str = "batch", eps: float = 1e-4
) -> torch.Tensor:
    """REINFORCE++ (Hu 2025): A_i = (r_i - mean_B r) / (std_B r + eps) over the whole batch B.

    No per-prompt baseline; the batch-level normalisation is what keeps it stable.
    """
    valid = ~rewards.isnan()
    adv = torch.zeros_like(rewards)
    if valid.sum() >= 2:
        adv[valid] = rewards[valid] - rewards[valid].mean()
    return _scale(adv, rewards, group_ids, std_scale, eps)
