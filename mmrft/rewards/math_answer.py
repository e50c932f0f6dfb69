"""Math answers checked by math-verify (Hugging Face): LaTeX / expression parsing and symbolic equality."""

from __future__ import annotations

import logging
import re
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


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalize_mathvista(
    extraction: str, choices: list[str] | None, answer_type: str, precision: int | None
) -> str | None:
    """MathVista's ``normalize_extracted_answer``: a letter or "(B) ..." picks that choice, other text
    the nearest choice by edit distance; integers and floats (rounded to ``precision``) as strings."""
    extraction = extraction.strip()
    if choices:
        letter = re.findall(r"\(([a-zA-Z])\)", extraction)
        if letter:
            extraction = letter[0].upper()
        options = [chr(ord("A") + i) for i in range(len(choices))]
        if extraction in options:
            return choices[options.index(extraction)]
        return min(choices, key=lambda c: _edit_distance(extraction, c))
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision or 0)))
    except (ValueError, OverflowError):  # not a number, or inf / nan where an integer is asked
        return None
    return extraction


def score_mathvista(
    text: str, solution: str, choices: list[str] | None = None, answer_type: str = "text", precision: int | None = None
) -> float:
    """1.0 if the normalised answer equals the reference answer string (MathVista's ``safe_equal``)."""
    answer = extract_answer(text)
    answer = text if answer is None else answer
    return float(normalize_mathvista(answer, choices, answer_type, precision) == str(solution))


@register_reward("mathvista", description="MathVista accuracy: answer normalised as MathVista's scorer does, then exact")
def mathvista_reward(
    completions: list[Any], solution: list[Any], choices: list | None = None, answer_type: list | None = None,
    precision: list | None = None, **_: Any,
) -> list[float | None]:
    """Columns: `solution` (answer string), optional `choices`, `answer_type` (integer, float, text, list), `precision`."""
    n = len(completions)
    choices, answer_type, precision = choices or [None] * n, answer_type or ["text"] * n, precision or [None] * n
    return [
        score_mathvista(completion_text(c), s, ch, t, p)
        for c, s, ch, t, p in zip(completions, solution, choices, answer_type, precision, strict=True)
    ]
