"""Open-ended VQA accuracy with the VQAv2 answer normalisation (Antol et al. 2015; the official eval script)."""

from __future__ import annotations

import re
from itertools import combinations
from typing import Any

from mmrft.rewards.parsing import completion_text, extract_answer
from mmrft.rewards.registry import register_reward

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = {"a", "an", "the"}
# The official script's map from apostrophe-less spellings to contractions (the common entries).
_CONTRACTIONS = {
    word.replace("'", ""): word
    for word in (
        "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't"
        " he'd he'd've he's how'd how'll how's i'd i'd've i'm i've isn't it'd it'd've it'll let's ma'am"
        " mightn't mightn't've might've mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd"
        " she'd've she's should've shouldn't shouldn't've somebody'd somebody'd've somebody'll somebody's"
        " someone'd someone'd've someone'll someone's something'd something'd've something'll that's there'd"
        " there'd've there're there's they'd they'd've they'll they're they've 'twas wasn't we'd we'd've we're"
        " we've weren't what'll what're what's what've when's where'd where's where've who'd who'd've who'll"
        " who's who've why'll why're why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've"
        " you'd you'd've you'll you're you've"
    ).split()
}
_PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: the official pattern (a typo for a lookbehind)
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")


def normalize_vqa_answer(answer: str) -> str:
    """VQAv2 normalisation: whitespace, punctuation, lower case, number words to digits, articles, contractions."""
    text = " ".join(answer.replace("\n", " ").replace("\t", " ").split())
    out = text
    for p in _PUNCTUATION:
        if (p + " " in text or " " + p in text) or _COMMA_IN_NUMBER.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    out = _PERIOD.sub("", out)
    words = [_NUMBER_WORDS.get(w, w) for w in out.lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words)


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """min(#annotators agreeing / 3, 1), averaged over the leave-one-out subsets of the annotators.

    With the usual ten answers this is the official VQA accuracy. Unlike the official script,
    answers are always normalised (it skips that when all ten annotators agree, so "2" against
    ten "two"s would score 0 there; here it scores 1).
    """
    if not answers:
        return 0.0
    pred = normalize_vqa_answer(prediction)
    gts = [normalize_vqa_answer(a) for a in answers]
    if len(gts) == 1:
        return float(pred == gts[0])
    subsets = list(combinations(range(len(gts)), len(gts) - 1))
    return sum(min(1.0, sum(gts[i] == pred for i in subset) / 3) for subset in subsets) / len(subsets)


def score_vqa(text: str, solution: Any) -> float | None:
    """VQA accuracy of the last answer block; `solution` is the annotators' answers (or one answer)."""
    answers = [solution] if isinstance(solution, str) else solution
    if not isinstance(answers, (list, tuple)) or not answers or not all(isinstance(a, str) for a in answers):
        return None
    answer = extract_answer(text)
    if answer is None or not answer:
        return 0.0
    return vqa_accuracy(answer, list(answers))


@register_reward("vqa_accuracy", description="VQAv2 accuracy: min(#matching annotators/3, 1), leave-one-out averaged")
def vqa_accuracy_reward(completions: list[Any], solution: list[Any], **_: Any) -> list[float | None]:
    """Column `solution`: the list of annotator answers (usually ten), or a single answer."""
    return [score_vqa(completion_text(c), s) for c, s in zip(completions, solution, strict=True)]
