"""Parsers shared by rewards and eval: completion text, the answer block, boxes, integers, labels.

Parsing is the attack surface of a verifiable reward, so every parser is strict: it returns
None for anything it does not fully understand rather than guessing.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

MAX_COORDINATE = 1e6
"""Box coordinates beyond this magnitude are rejected as nonsense."""

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_FOUR_NUMBERS = r"\s*,\s*".join([f"({_NUMBER})"] * 4)
_BOX = re.compile(rf"\[\s*{_FOUR_NUMBERS}\s*\]|\(\s*{_FOUR_NUMBERS}\s*\)|{_FOUR_NUMBERS}", re.ASCII)
_TWO_NUMBERS = r"\s*,\s*".join([f"({_NUMBER})"] * 2)
_POINT = re.compile(rf"\[\s*{_TWO_NUMBERS}\s*\]|\(\s*{_TWO_NUMBERS}\s*\)|{_TWO_NUMBERS}", re.ASCII)
_INTEGER = re.compile(r"[-+]?\d{1,18}", re.ASCII)  # bounded: int() refuses >4300 digits
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
        " fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_ARTICLES = {"a", "an", "the"}


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The text of a completion given as a string or as chat messages (TRL's two forms).

    Message content may be a string or a list of content items; text items are joined.
    """
    if isinstance(completion, str):
        return completion
    return "\n".join(_content_text(message.get("content")) for message in completion)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content if item.get("type") == "text")


def extract_answer(text: str) -> str | None:
    """Stripped content of the last `<answer>...</answer>` block, or None if there is none.

    Taking the last block means an echoed prompt (which may show an example answer) is ignored.
    """
    close = text.rfind("</answer>")
    if close < 0:
        return None
    open_ = text.rfind("<answer>", 0, close)
    if open_ < 0:
        return None
    return text[open_ + len("<answer>") : close].strip()


def parse_box(text: str) -> list[float] | None:
    """Exactly four finite numbers: `[x1, y1, x2, y2]`, `(x1, y1, x2, y2)` or `x1, y1, x2, y2`."""
    match = _BOX.fullmatch(text.strip())
    if match is None:
        return None
    box = [float(g) for g in match.groups() if g is not None]
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in box):
        return None
    return box


def parse_point(text: str) -> list[float] | None:
    """Exactly two finite numbers: `(x, y)`, `[x, y]` or `x, y`."""
    match = _POINT.fullmatch(text.strip())
    if match is None:
        return None
    point = [float(g) for g in match.groups() if g is not None]
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in point):
        return None
    return point


def parse_int(text: str) -> int | None:
    """A single integer written in digits or as an English word up to twenty; else None.

    A trailing full stop is tolerated ("3."); anything else around the number is not.
    """
    text = text.strip().removesuffix(".").strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    return _NUMBER_WORDS.get(text.lower())


def normalize_label(text: str) -> str:
    """Lowercase, punctuation to spaces, articles (a/an/the) dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(word for word in text.split() if word not in _ARTICLES)
