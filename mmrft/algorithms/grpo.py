"""The GRPO core: group advantages, the clipped surrogate, KL estimators, loss aggregation.

Pure tensor functions that know nothing of images or tokens beyond "a row has a mask". Text
policies and action policies feed them the same way. Groups are explicit ids, never positions.
"""

from __future__ import annotations

import torch

from mmrft.registry import Registry

ADVANTAGES = Registry("advantage estimator")
LOSS_AGGREGATIONS = Registry("loss aggregation")
KL_ESTIMATORS = Registry("KL estimator")


@ADVANTAGES.register("grpo")
def group_advantages(rewards: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """GRPO advantages (DeepSeekMath, Shao et al. 2024): A_i = (r_i - mean_g r) / (std_g r + eps).

    ``rewards`` (N,) may hold NaN for "not applicable": such rows get advantage 0 and are left
    out of their group's mean and std. std is the unbiased sample std (as in TRL); a group with
    one valid member or zero variance gets advantage 0.
    """
    adv = torch.zeros_like(rewards)
    for g in group_ids.unique():
        rows = (group_ids == g) & ~rewards.isnan()
        r = rewards[rows]
        if r.numel() < 2 or bool((r == r[0]).all()):  # zero variance: 0, also when eps == 0
            continue
        adv[rows] = (r - r.mean()) / (r.std() + eps)
    return adv


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped objective per token (Schulman et al. 2017), as a loss to minimise.

    loss_t = -min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A),  rho_t = exp(logp_t - old_logp_t).
    Separate low/high epsilons give DAPO's clip-higher. ``advantages`` is (N,) or (N, T).
    Returns (per-token loss, per-token bool "was clipped").
    """
    adv = advantages if advantages.dim() == logprobs.dim() else advantages.unsqueeze(-1)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped_ratio = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
    unclipped, clipped = ratio * adv, clipped_ratio * adv
    return -torch.min(unclipped, clipped), clipped < unclipped


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's unbiased, non-negative k3 estimator of KL(pi || ref) per token:
    exp(ref - logp) - (ref - logp) - 1."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


@LOSS_AGGREGATIONS.register("token_mean")
def token_mean(
    per_token: torch.Tensor, mask: torch.Tensor, num_tokens: float | None = None, num_sequences: float | None = None
) -> torch.Tensor:
    """DAPO (Yu et al. 2025): sum over all tokens / number of tokens in the batch.

    Every aggregation takes the token and sequence counts of the whole optimizer batch
    (``num_tokens``, ``num_sequences``) when it sees one micro-batch of it, so that accumulated
    micro-batches add up to the full-batch loss.
    """
    total = mask.sum() if num_tokens is None else num_tokens
    return (per_token * mask).sum() / max(float(total), 1.0)


@LOSS_AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(
    per_token: torch.Tensor, mask: torch.Tensor, num_tokens: float | None = None, num_sequences: float | None = None
) -> torch.Tensor:
    """GRPO paper: mean over sequences of each sequence's mean over its tokens."""
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.sum() / (num_sequences or per_token.shape[0])


@LOSS_AGGREGATIONS.register("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(
    per_token: torch.Tensor, mask: torch.Tensor, num_tokens: float | None = None, num_sequences: float | None = None
) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025): token sums per sequence divided by a constant (the max
    completion length T), then averaged over sequences — no length bias."""
    per_seq = (per_token * mask).sum(-1) / per_token.shape[-1]
    return per_seq.sum() / (num_sequences or per_token.shape[0])
