"""Open-ended VQA accuracy, exactly as VQAv2's official evaluation script computes it.

The official script (GT-Vision-Lab/VQA, ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``,
Antol et al. 2015; BSD licence, (c) 2014 Aishwarya Agrawal) scores one question so:

1. The prediction and each annotator answer get newlines and tabs turned into spaces, then are
   stripped. Nothing else yet: no lower-casing.
2. Only if the ten answers are not all the same string are the prediction and the answers
   normalised (punctuation, then number words, articles and contractions). When the ten agree,
   the prediction must equal their answer character for character ("Yes" or "2" against ten
   "yes" / "two" scores 0).
3. Leaving out each annotator in turn, ``min(#other annotators who gave the prediction / 3, 1)``;
   the accuracy is the mean over the ten.

Quirks kept because they change scores: the period pattern is applied at most 32 times (the
script passes ``re.UNICODE``, 32, where ``Pattern.sub`` takes its ``count``); the contraction
table maps ``somebody'd`` to ``somebodyd``, and its capitalised keys ("Im") never match the
lower-cased words. ``vqa_accuracy_normalized`` keeps mmrft's earlier scorer, which normalises
every time (so "2" against ten "two" scores 1); docs/evaluation.md compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mmrft.rewards.parsing import completion_text, extract_answer
from mmrft.rewards.registry import register_reward

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = {"a", "an", "the"}
# Contracted forms; the official table maps each spelling that lacks exactly one of a form's
# apostrophes back to the form ("couldnt've" and "couldn'tve" to "couldn't've", never "couldntve").
_CONTRACTED_FORMS = (
    "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't"
    " he'd he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am mightn't mightn't've might've"
    " mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't"
    " shouldn't've somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's"
    " something'd something'd've something'll that's there'd there'd've there're there's they'd they'd've"
    " they'll they're they've 'twas wasn't we'd've we've weren't what'll what're what's what've when's"
    " where'd where's where've who'd who'd've who'll who's who've why'll why're why's won't would've"
    " wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've"
).split()
_CONTRACTIONS = {
    form[:i] + form[i + 1 :]: form for form in _CONTRACTED_FORMS for i, char in enumerate(form) if char == "'"
}
_CONTRACTIONS["somebody'd"] = "somebodyd"  # sic: the official table has this one backwards
_PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: the official pattern (a typo for a lookbehind)
_PERIOD_LIMIT = 32  # the official script's re.UNICODE landing in Pattern.sub's `count`
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")


def _clean(answer: str) -> str:
    """Step 1 of the official script: newlines and tabs to spaces, then strip."""
    return answer.replace("\n", " ").replace("\t", " ").strip()


def _strip_punctuation(text: str) -> str:
    """The official `processPunctuation`: each mark goes; it leaves a space unless a space already
    touches one of its kind, or a comma sits between digits anywhere in the text."""
    out = text
    joined = _COMMA_IN_NUMBER.search(text) is not None
    for mark in _PUNCTUATION:
        out = out.replace(mark, "" if joined or mark + " " in text or " " + mark in text else " ")
    return _PERIOD.sub("", out, count=_PERIOD_LIMIT)


def normalize_vqa_answer(answer: str) -> str:
    """The official normalisation: punctuation, lower case, number words to digits, articles, contractions."""
    words = [_NUMBER_WORDS.get(w, w) for w in _strip_punctuation(_clean(answer)).lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def _leave_one_out(prediction: str, answers: Sequence[str]) -> float:
    """Mean over annotators i of min(#annotators other than i who gave `prediction` / 3, 1)."""
    matches = sum(a == prediction for a in answers)
    per_left_out = [min(1.0, (matches - (a == prediction)) / 3) for a in answers]
    return sum(per_left_out) / len(per_left_out)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQAv2 accuracy of `prediction` against the annotators' `answers`, as the official script.

    Normalisation happens only when the cleaned answers are not all the same (module docstring).
    A single answer scores 0 (the official leave-one-out leaves no one); no answers score 0.
    """
    if not answers:
        return 0.0
    pred, gts = _clean(prediction), [_clean(a) for a in answers]
    if len(set(gts)) > 1:
        pred, gts = normalize_vqa_answer(pred), [normalize_vqa_answer(a) for a in gts]
    return _leave_one_out(pred, gts)


def vqa_accuracy_normalized(prediction: str, answers: Sequence[str]) -> float:
    """mmrft's earlier VQA scorer, not the benchmark's: the official normalisation applied to the
    prediction and every answer always (also when all annotators agree), then the leave-one-out mean."""
    if not answers:
        return 0.0
    return _leave_one_out(normalize_vqa_answer(prediction), [normalize_vqa_answer(a) for a in answers])


def _scorer(accuracy):
    def score(text: str, solution: Any) -> float | None:
        """Accuracy of the last answer block; `solution` is the annotators' answers, or one answer.

        One answer given as a string (a training set's reference, not VQAv2's ten) scores 1 when it
        equals the prediction after normalisation: the official leave-one-out has no such case.
        """
        if isinstance(solution, str):
            answer = extract_answer(text)
            return float(answer is not None and normalize_vqa_answer(answer) == normalize_vqa_answer(solution))
        if not isinstance(solution, (list, tuple)) or not solution or not all(isinstance(a, str) for a in solution):
            return None
        answer = extract_answer(text)
        return 0.0 if answer is None else accuracy(answer, list(solution))

    return score


score_vqa = _scorer(vqa_accuracy)
score_vqa_normalized = _scorer(vqa_accuracy_normalized)


@register_reward("vqa_accuracy", description="VQAv2 accuracy as the official script: min(#matching annotators/3, 1), leave-one-out")
def vqa_accuracy_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: the list of annotator answers (usually ten), or a single answer."""
    return [score_vqa(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]


@register_reward(
    "vqa_accuracy_normalized",
    description="VQA accuracy normalising prediction and answers always (mmrft's earlier scorer; not VQAv2's)",
)
def vqa_accuracy_normalized_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: the list of annotator answers, or a single answer."""
    return [score_vqa_normalized(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]
