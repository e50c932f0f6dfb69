"""Example user reward, loaded by path: `rewards/example_plugin.py:answer_length_penalty`.

A reward is any function `fn(completions, **columns) -> list[float | None]`. It receives the
completions (strings or chat-message lists) and every dataset column as a keyword argument
(lists aligned with the completions), and ignores columns it does not use via `**_`.
"""

from typing import Any

from mmrft.rewards.parsing import completion_text, extract_answer

MAX_ANSWER_CHARS = 64
"""Answers up to this length score 1.0; the score falls linearly to 0.0 at twice this length."""


def answer_length_penalty(completions: list[Any], **_: Any) -> list[float | None]:
    """Score in [0, 1] that discourages long answer blocks; None (not applicable) without one."""
    scores: list[float | None] = []
    for completion in completions:
        answer = extract_answer(completion_text(completion))
        if answer is None:
            scores.append(None)
        else:
            excess = max(0, len(answer) - MAX_ANSWER_CHARS) / MAX_ANSWER_CHARS
            scores.append(max(0.0, 1.0 - excess))
    return scores
