"""Exact-answer rewards: a class label or a count in the last answer block."""

from __future__ import annotations

from typing import Any

from mmrft.rewards.parsing import completion_text, extract_answer, normalize_label, parse_int
from mmrft.rewards.registry import register_reward


def score_label(text: str, solution: str | list[str]) -> float | None:
    """1.0 if the last answer equals the label (or one synonym) after `normalize_label`, else 0.0.

    Exact match rejects hedges and lists ("red or blue", "red/blue", "red, blue") for free.
    None when the solution has no usable label.
    """
    labels = [solution] if isinstance(solution, str) else solution
    if not isinstance(labels, (list, tuple)):
        return None
    accepted = {normalize_label(label) for label in labels if isinstance(label, str)} - {""}
    if not accepted:
        return None
    answer = extract_answer(text)
    return float(answer is not None and normalize_label(answer) in accepted)


def score_count(text: str, solution: int | str) -> float | None:
    """1.0 if the last answer is exactly one integer equal to `solution`, else 0.0; None if no solution."""
    if isinstance(solution, int) and not isinstance(solution, bool):
        target = solution
    elif isinstance(solution, str):
        target = parse_int(solution)
    else:
        return None
    if target is None:
        return None
    answer = extract_answer(text)
    return float(answer is not None and parse_int(answer) == target)


@register_reward("classification", description="1 if the answer is the label (or a synonym), else 0")
def classification_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: a label string or a list of acceptable synonyms."""
    return [score_label(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]


@register_reward("count", description="1 if the answer is exactly the integer count, else 0")
def count_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: the integer count."""
    return [score_count(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]
