"""Training micro-batches: whole prompts (groups), either in equal parts or packed by a token budget."""

from __future__ import annotations


def micro_batches(num_prompts: int, parts: int) -> list[list[int]]:
    """Split prompt indices into ``parts`` contiguous chunks: each micro-batch holds whole groups."""
    size = -(-num_prompts // parts)
    return [list(range(i, min(i + size, num_prompts))) for i in range(0, num_prompts, size)]


def token_budget_batches(lengths: list[int], rows: list[int], budget: int) -> list[list[int]]:
    """Pack prompts into micro-batches whose padded size stays within ``budget`` tokens.

    Prompt ``p`` has ``rows[p]`` rows (its completions) of at most ``lengths[p]`` tokens (prompt
    plus longest completion). Prompts are taken shortest first, so each micro-batch holds
    sequences of similar length and little padding; a micro-batch's size is its rows times its
    longest row. A prompt over the budget on its own gets a micro-batch to itself.
    """
    batches, current, current_rows, longest = [], [], 0, 0
    for p in sorted(range(len(lengths)), key=lambda p: lengths[p]):
        if current and (current_rows + rows[p]) * max(longest, lengths[p]) > budget:
            batches.append(current)
            current, current_rows, longest = [], 0, 0
        current.append(p)
        current_rows += rows[p]
        longest = max(longest, lengths[p])
    if current:
        batches.append(current)
    return batches
