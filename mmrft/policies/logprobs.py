"""Log-probs and entropies of chosen tokens without a full-vocabulary tensor per position.

A training forward needs ``log softmax(h W^T / T)`` only at the completion tokens, gathered at
the sampled token, plus the distribution's entropy. Materialising the (rows, positions, vocab)
logits for that costs several full-vocabulary fp32 tensors per position (with Qwen's 151,936
tokens, more memory than a 3B model's weights at GRPO batch sizes). Here the output head runs
on the completion positions only, in chunks of rows whose logits are at most
:data:`CHUNK_ELEMENTS` values; each chunk is checkpointed, so its backward recomputes the
chunk's logits instead of keeping them. Entropy is computed in the same chunks, without an
autograd graph unless it is trained on.

:func:`head_override` runs this *inside* the model's own forward (as the output head's forward),
so sharded engines (FSDP2, DeepSpeed ZeRO-3) gather and reduce the head's weight as they would
for its ordinary call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.utils.checkpoint import checkpoint

CHUNK_ELEMENTS = 1 << 23
"""Largest logits chunk (rows x vocabulary), 32 MiB in fp32; a chunk's forward and recomputed
backward hold about five tensors of this size."""


def restrict(logits: torch.Tensor, allowed_ids: torch.Tensor | None) -> torch.Tensor:
    """Logits with every token outside ``allowed_ids`` at -inf (unchanged when None)."""
    if allowed_ids is None:
        return logits
    mask = torch.full((logits.shape[-1],), float("-inf"), device=logits.device)
    mask[allowed_ids.to(logits.device)] = 0.0
    return logits + mask


def entropy_of(logp: torch.Tensor) -> torch.Tensor:
    """H = -sum_v p_v log p_v over the last dimension (tokens at -inf contribute 0)."""
    return -(logp.exp() * logp.masked_fill(logp.isinf(), 0.0)).sum(-1)


def _chunk_logprobs(head, hidden, targets, temperature, allowed_ids, entropy_grad):
    """One chunk: (rows,) log-probs of ``targets`` and entropies, from hidden states (rows, H)."""
    logits = restrict(head(hidden).float() / temperature, allowed_ids)
    logp = logits.log_softmax(-1)
    chosen = logp.gather(1, targets[:, None]).squeeze(1)
    if entropy_grad:
        return chosen, entropy_of(logp)
    with torch.no_grad():
        return chosen, entropy_of(logp)


def head_logprobs(
    head: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 1.0,
    allowed_ids: torch.Tensor | None = None,
    entropy_grad: bool = False,
    vocab_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of ``targets`` (M,) and entropies under ``head`` (hidden -> logits) applied to
    ``hidden`` (M, H), at ``temperature``, in checkpointed chunks of at most CHUNK_ELEMENTS logits.

    ``entropy_grad``: keep the entropy in the autograd graph (an entropy bonus trains on it).
    ``vocab_size`` sizes the chunks (default: one head call on a single row to find it).
    """
    vocab = vocab_size or head(hidden[:1]).shape[-1]
    rows = max(1, CHUNK_ELEMENTS // vocab)
    scale = temperature if temperature > 0 else 1.0
    needs_graph = torch.is_grad_enabled()
    chosen, entropies = [], []
    for start in range(0, hidden.shape[0], rows):
        args = (head, hidden[start : start + rows], targets[start : start + rows], scale, allowed_ids, entropy_grad)
        if needs_graph:
            lp, ent = checkpoint(_chunk_logprobs, *args, use_reentrant=False)
        else:
            lp, ent = _chunk_logprobs(*args)
        chosen.append(lp)
        entropies.append(ent)
    if not chosen:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, empty
    return torch.cat(chosen), torch.cat(entropies)


@contextmanager
def head_override(lm_head: torch.nn.Module, compute: Callable) -> Iterator[None]:
    """Within the block, ``lm_head(hidden)`` returns ``compute(head, hidden)`` instead of logits,
    where ``head`` is the module's own forward (its weights, LoRA included, under autocast as
    called). The module and its hooks stay in place, so the model's forward runs as usual."""
    own = lm_head.__dict__.get("forward")  # a hook library may have set an instance forward
    original = lm_head.forward
    lm_head.forward = lambda hidden: compute(original, hidden)
    try:
        yield
    finally:
        if own is None:
            del lm_head.forward
        else:
            lm_head.forward = own
