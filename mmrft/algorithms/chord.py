"""CHORD (Zhang et al. 2025, "On-Policy RL Meets Off-Policy Experts"): an auxiliary SFT loss on
expert answers during RFT, L = (1 - mu) L_policy + mu L_SFT, with a global schedule for mu and
an optional token-wise weight phi(p) = p (1 - p)."""

from __future__ import annotations

import torch


def sft_coef_at(step: int, start: float, end: float | None, decay_steps: int) -> float:
    """mu at ``step``: linear from ``start`` to ``end`` over ``decay_steps``, then held (constant without ``end``)."""
    if end is None or decay_steps <= 0:
        return start
    frac = min(max(step, 0) / decay_steps, 1.0)
    return start + (end - start) * frac


def weighted_sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, num_tokens: float, weighting: str) -> torch.Tensor:
    """Token-mean NLL of expert tokens, each weighted by 1 ("none") or by phi = p (1 - p) ("p(1-p)").

    phi uses the detached probability, as a per-token weight on the log-likelihood gradient: it
    vanishes for tokens the policy already predicts (p -> 1) and for ones far from it (p -> 0).
    """
    if weighting == "p(1-p)":
        p = logprobs.detach().exp()
        weight = p * (1 - p)
    elif weighting == "none":
        weight = torch.ones_like(logprobs)
    else:
        raise ValueError(f"sft_token_weighting must be 'none' or 'p(1-p)'; got {weighting!r}")
    return -(weight * logprobs * mask).sum() / max(float(num_tokens), 1.0)
