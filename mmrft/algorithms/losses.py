"""The policy loss: the clipped surrogate, KL estimators, loss aggregation, entropy control.

Pure tensor functions that know nothing of images or tokens beyond "a row has a mask". Text
policies and action policies feed them the same way.
"""

from __future__ import annotations

import torch

from mmrft.registry import Registry

LOSS_AGGREGATIONS = Registry("loss aggregation")
KL_ESTIMATORS = Registry("KL estimator")


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped objective per token (Schulman et al. 2017), as a loss to minimise.

    loss_t = -min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A),  rho_t = exp(logp_t - old_logp_t).
    Separate low/high epsilons give DAPO's clip-higher (Yu et al. 2025). ``dual_clip`` = c > 1
    (Ye et al. 2020, dual-clip PPO) also bounds the loss of a negative-advantage token by -c A,
    so a huge ratio cannot blow it up. ``advantages`` is (N,) or (N, T).
    Returns (per-token loss, per-token bool "was clipped").
    """
    adv = advantages if advantages.dim() == logprobs.dim() else advantages.unsqueeze(-1)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped_ratio = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
    unclipped, clipped = ratio * adv, clipped_ratio * adv
    loss = -torch.min(unclipped, clipped)
    was_clipped = clipped < unclipped
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1; got {dual_clip}")
        bound = -dual_clip * adv
        dual = (adv < 0) & (loss > bound)
        loss = torch.where(dual, bound, loss)
        was_clipped = was_clipped | dual
    return loss, was_clipped


@KL_ESTIMATORS.register("k1")
def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k1 = logp - ref: unbiased for KL(pi || ref) under samples of pi, can be negative."""
    return logprobs - ref_logprobs


@KL_ESTIMATORS.register("k2")
def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k2 = (logp - ref)^2 / 2: biased, low variance, non-negative."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 = exp(ref - logp) - (ref - logp) - 1: unbiased and non-negative (GRPO's choice)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


# Every aggregation takes the token and sequence counts of the whole optimizer batch
# (``num_tokens``, ``num_sequences``) when it sees one micro-batch of it, so that accumulated
# micro-batches add up to the full-batch loss, and ``max_tokens``, the generation length cap.
@LOSS_AGGREGATIONS.register("token_mean")
def token_mean(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    num_tokens: float | None = None,
    num_sequences: float | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """DAPO (Yu et al. 2025): sum over all tokens of the batch / number of tokens in the batch."""
    total = mask.sum() if num_tokens is None else num_tokens
    return (per_token * mask).sum() / max(float(total), 1.0)


@LOSS_AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    num_tokens: float | None = None,
    num_sequences: float | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """GRPO paper (Shao et al. 2024): mean over sequences of each sequence's mean over its tokens."""
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.sum() / (num_sequences or per_token.shape[0])


@LOSS_AGGREGATIONS.register("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    num_tokens: float | None = None,
    num_sequences: float | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025): each sequence's token sum divided by a constant, the
    generation cap ``max_tokens`` (the padded width when not given), then averaged over
    sequences — no length bias."""
    per_seq = (per_token * mask).sum(-1) / (max_tokens or per_token.shape[-1])
    return per_seq.sum() / (num_sequences or per_token.shape[0])


def entropy_bonus_coef(coef: float, entropy: float, target: float | None, step_size: float, max_coef: float) -> float:
    """The entropy-bonus coefficient for the next step.

    Without a target the coefficient is fixed. With one, a bang-bang controller (as in
    Skywork-OR1's adaptive entropy control): raise it by ``step_size`` while the measured
    entropy is below the target, lower it otherwise, within [0, ``max_coef``].
    """
    if target is None:
        return coef
    change = step_size if entropy < target else -step_size
    return min(max(coef + change, 0.0), max_coef)


def truncated_is_weights(train_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, mask: torch.Tensor, cap: float) -> torch.Tensor:
    """Per-token truncated importance weights min(pi_train / pi_rollout, cap) (Yao et al. 2025's TIS,
    TRL's ``token_truncate``): the correction for sampling with one engine and training with another.
    1 where ``mask`` is 0."""
    ratio = (train_logprobs - rollout_logprobs).masked_fill(mask == 0, 0.0).exp()
    return ratio.clamp(max=cap).detach()
