"""Math answers checked by math-verify (Hugging Face): LaTeX / expression parsing and symbolic equality."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from mmrft.rewards.parsing import completion_text, extract_answer
from mmrft.rewards.registry import register_reward

MAX_ANSWER_CHARS = 2000
"""Longer answers score 0 without parsing: sympy on hostile input can take very long."""


def _math_verify() -> ModuleType:
    try:
        import math_verify
    except ImportError as error:
        raise ImportError(
            "the 'math' reward needs math-verify: pip install 'math-verify>=0.7'"
        ) from error
    # Both calls below run without math-verify's signal-based timeout (it only works in the main
    # thread); it warns about that on every call. Bound a slow reward with call_reward(timeout_s=...).
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return math_verify


def score_math(text: str, solution: Any) -> float | None:
    """1.0 if the answer equals `solution` by math-verify, else 0.0; None if the solution does not parse.

    The answer is the last answer block if there is one, else the whole completion (math-verify
    itself finds `\\boxed{...}` or the last expression). Both sides are parsed
    by `math_verify.parse` as given, so scores equal `verify(parse(solution), parse(answer))`.
    """
    mv = _math_verify()
    if isinstance(solution, (int, float)) and not isinstance(solution, bool):
        solution = str(solution)
    if not isinstance(solution, str) or not solution.strip():
        return None
    gold = mv.parse(solution, parsing_timeout=None)
    if not gold:
        return None
    answer = extract_answer(text)
    answer = text if answer is None else answer
    if not answer.strip() or len(answer) > MAX_ANSWER_CHARS:
        return 0.0
    prediction = mv.parse(answer, parsing_timeout=None)
    if not prediction:
        return 0.0
    return float(mv.verify(gold, prediction, timeout_seconds=None))


@register_reward("math", description="1 if the answer equals the solution by math-verify (symbolic), else 0")
def math_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: the reference answer (LaTeX or plain, e.g. `\\frac{1}{2}` or `0.5`). Needs math-verify."""
    return [score_math(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]
