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
