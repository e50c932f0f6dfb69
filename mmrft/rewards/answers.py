"""Exact-answer rewards: a class label, a count or a multiple-choice option in the last answer block."""

from __future__ import annotations

import re
from typing import Any

from mmrft.rewards.formatting import is_answer_only
from mmrft.rewards.parsing import completion_text, extract_answer, normalize_label, parse_int
from mmrft.rewards.registry import register_reward


def _accepted_labels(solution: str | list[str]) -> set[str]:
    """The normalised label and its synonyms; empty when the solution has no usable label."""
    labels = [solution] if isinstance(solution, str) else solution
    if not isinstance(labels, (list, tuple)):
        return set()
    return {normalize_label(label) for label in labels if isinstance(label, str)} - {""}


def score_label(text: str, solution: str | list[str]) -> float | None:
    """1.0 if the last answer equals the label (or one synonym) after `normalize_label`, else 0.0.

    Exact match rejects hedges and lists ("red or blue", "red/blue", "red, blue") for free.
    None when the solution has no usable label.
    """
    accepted = _accepted_labels(solution)
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


def score_label_exact(text: str, solution: str | list[str]) -> float | None:
    """No-Thinking-CLS-RL equality: 1.0 iff the whole completion is the label (or a synonym).

    The completion may be the bare label or one `<answer>label</answer>` block and nothing
    else; normalisation as in `score_label`. Any other text, even a correct label inside a
    sentence or after reasoning, scores 0.0 (Li et al. 2025, "Think or Not Think").
    """
    accepted = _accepted_labels(solution)
    if not accepted:
        return None
    body = extract_answer(text) if is_answer_only(text) else text
    if any(tag in body for tag in ("<answer>", "</answer>", "<think>", "</think>")):
        return 0.0
    return float(normalize_label(body) in accepted)


_OPTION = re.compile(r"(?:option\s+)?[(\[]?([A-Za-z])[)\].:]?(?:\s+(.+))?", re.DOTALL | re.IGNORECASE)


def parse_choice(answer: str, options: list[str] | None = None) -> str | None:
    """The one option letter an answer commits to, upper-case; None if none or hedged.

    Accepted: `B`, `(B)`, `B.`, `B)`, `Option B`, `B. <text of option B>` and, when `options`
    (option texts in order A, B, ...) are given, the text of exactly one option. A letter
    followed by any other text ("A or B", "B because ...") is rejected, as is a letter beyond
    the options.
    """
    answer = answer.strip()
    match = _OPTION.fullmatch(answer)
    texts = [normalize_label(o) if isinstance(o, str) else "" for o in options or []]
    if match is not None:
        letter, rest = match.group(1).upper(), match.group(2)
        index = ord(letter) - ord("A")
        in_range = not texts or index < len(texts)
        if rest is None and in_range:
            return letter
        if rest is not None and texts and in_range and normalize_label(rest) == texts[index] != "":
            return letter
    if texts:
        hits = [i for i, t in enumerate(texts) if t and normalize_label(answer) == t]
        if len(hits) == 1:
            return chr(ord("A") + hits[0])
    return None


def score_choice(text: str, solution: Any, options: list[str] | None = None) -> float | None:
    """1.0 if the last answer block commits to exactly the solution's option, else 0.0.

    `solution` is the option letter, its 0-based index, or (with `options`) the option text.
    """
    if isinstance(solution, int) and not isinstance(solution, bool) and 0 <= solution < 26:
        target = chr(ord("A") + solution)
    elif isinstance(solution, str):
        target = parse_choice(solution, options)
    else:
        return None
    if target is None:
        return None
    answer = extract_answer(text)
    return float(answer is not None and parse_choice(answer, options) == target)


@register_reward(
    "classification_exact",
    description="1 iff the whole completion is the label (bare or in one answer block): No-Thinking-CLS-RL",
)
def classification_exact_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: a label string or a list of acceptable synonyms."""
    return [score_label_exact(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]


@register_reward(
    "multiple_choice", description="1 if the answer is exactly one option, the correct one (letter or text), else 0"
)
def multiple_choice_reward(
    completions: list[Any], solution: list[Any], options: list[list[str] | None] | None = None, **_: Any
) -> list[float | None]:
    """Columns: `solution` (letter, 0-based index or option text), optional `options` (texts, in order A, B, ...)."""
    options = options or [None] * len(completions)
    return [
        score_choice(completion_text(c), s, o if isinstance(o, list) else None)
        for c, s, o in zip(completions, solution, options, strict=True)
    ]
