"""Format rewards: does the completion have exactly the required tag structure?"""

from __future__ import annotations

import re
from typing import Any

from mmrft.rewards.parsing import completion_text
from mmrft.rewards.registry import register_reward

_THINK_TAGS = ("<think>", "</think>")
_ANSWER_TAGS = ("<answer>", "</answer>")
_THINK_ANSWER = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_ANSWER_ONLY = re.compile(r"\s*<answer>(.*?)</answer>\s*", re.DOTALL)


def is_think_answer(text: str) -> bool:
    """`<think>...</think><answer>...</answer>` and nothing else; one of each tag, neither block empty."""
    match = _THINK_ANSWER.fullmatch(text)
    return (
        match is not None
        and all(text.count(tag) == 1 for tag in _THINK_TAGS + _ANSWER_TAGS)
        and all(group.strip() for group in match.groups())
    )


def is_answer_only(text: str) -> bool:
    """A single non-empty `<answer>...</answer>` block and nothing else (no think tags)."""
    match = _ANSWER_ONLY.fullmatch(text)
    return (
        match is not None
        and all(text.count(tag) == 1 for tag in _ANSWER_TAGS)
        and not any(tag in text for tag in _THINK_TAGS)
        and bool(match.group(1).strip())
    )


@register_reward("format", description="1 if exactly <think>...</think><answer>...</answer>, else 0")
def format_reward(completions: list[Any], **_: Any) -> list[float | None]:
    """Strict think-mode format reward."""
    return [float(is_think_answer(completion_text(c))) for c in completions]


@register_reward("format_nothink", description="1 if exactly one <answer>...</answer> block and nothing else, else 0")
def format_nothink_reward(completions: list[Any], **_: Any) -> list[float | None]:
    """Strict answer-only format reward."""
    return [float(is_answer_only(completion_text(c))) for c in completions]


DEFAULT_MAX_CHARS = 1024
"""`length_penalty`'s budget when the sample has no `max_chars` column."""


def length_penalty(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> float:
    """0.0 up to `max_chars` characters, falling linearly to -1.0 at twice that (DAPO's soft overlong shape)."""
    excess = max(0, len(text) - max_chars) / max_chars
    return -min(1.0, excess)


def repetition_penalty(text: str, n: int = 3) -> float:
    """-(fraction of repeated word n-grams): 0.0 when no n-gram repeats, towards -1.0 for a loop.

    Words are whitespace-separated; text without spaces (e.g. CJK) is split into characters.
    Fewer than two n-grams: 0.0.
    """
    words = text.split()
    if len(words) <= 1:
        words = list(text.replace(" ", ""))
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return -(1.0 - len(set(grams)) / len(grams))


@register_reward(
    "length_penalty", range=(-1.0, 0.0), description="0 up to max_chars (default 1024), then linearly to -1 at 2x"
)
def length_penalty_reward(
    completions: list[Any], max_chars: list[int | None] | None = None, **_: Any
) -> list[float | None]:
    """Optional column `max_chars`: the character budget per sample."""
    budgets = max_chars or [None] * len(completions)
    return [
        length_penalty(completion_text(c), b if isinstance(b, int) and not isinstance(b, bool) and b > 0 else DEFAULT_MAX_CHARS)
        for c, b in zip(completions, budgets, strict=True)
    ]


@register_reward("repetition_penalty", range=(-1.0, 0.0), description="-(fraction of repeated word 3-grams)")
def repetition_penalty_reward(completions: list[Any], **_: Any) -> list[float | None]:
    """Penalises degenerate loops; 0 for text without repeated 3-grams."""
    return [repetition_penalty(completion_text(c)) for c in completions]
