"""VQAv2 accuracy equals the official vqaEval.py's, case by case.

Each expected value is worked out by hand from the official script's steps (mmrft/rewards/vqa.py
says them): clean (newlines/tabs, strip); normalise prediction and answers only when the ten
cleaned answers differ; mean over the ten left-out annotators of min(#other matches / 3, 1).
"""

import pytest

from mmrft.rewards import get_reward
from mmrft.rewards.vqa import normalize_vqa_answer, vqa_accuracy, vqa_accuracy_normalized

OFFICIAL_CASES = [
    # all ten agree: no normalisation at all, so only the exact string scores
    ("all agree, exact", "yes", ["yes"] * 10, 1.0),
    ("all agree, case differs", "Yes", ["yes"] * 10, 0.0),
    ("all agree, number word vs digit", "2", ["two"] * 10, 0.0),
    ("all agree, surrounding whitespace", " \tyes\n", ["yes"] * 10, 1.0),
    ("all agree after cleaning", "dog", ["dog"] * 9 + [" dog\t"], 1.0),
    # answers differ: everything is normalised
    ("differ, number word", "2", ["two"] * 9 + ["2"], 1.0),
    ("differ, case and article", "The Dog", ["dog"] * 9 + ["a dog"], 1.0),
    # 3 matches: 3 left-out subsets see 2 (2/3), 7 see 3 (1): (2 + 7) / 10
    ("three of ten", "red", ["red"] * 3 + ["blue"] * 7, 0.9),
    ("one of ten", "red", ["red"] + ["blue"] * 9, 0.3),
    # the period pattern runs at most 32 times: a 33rd period stays, "yes." != "yes"
    ("33 periods", "yes" + "." * 33, ["yes"] * 9 + ["no"], 0.0),
    ("32 periods", "yes" + "." * 32, ["yes"] * 9 + ["no"], 1.0),
    # contractions: only keys the official table has
    ("couldntve is not a key", "couldntve", ["couldn't've"] * 4 + ["no"] * 6, 0.0),
    ("couldnt've is", "couldnt've", ["couldn't've"] * 4 + ["no"] * 6, 1.0),
    ("im: the table's key is 'Im', never matched", "im", ["i'm"] * 4 + ["no"] * 6, 0.0),
    ("somebody'd becomes somebodyd", "somebody'd", ["somebodyd"] * 4 + ["no"] * 6, 1.0),
    # only newline and tab are turned into spaces before the punctuation step: "\r" is not
    ("comma before carriage return", "red,\rblue", ["red blue"] * 4 + ["no"] * 6, 1.0),
    ("colon is not punctuation", "yes:", ["yes"] * 4 + ["no"] * 6, 0.0),
    ("one answer: nobody is left", "yes", ["yes"], 0.0),
]


@pytest.mark.parametrize("case, prediction, answers, expected", OFFICIAL_CASES, ids=[c[0] for c in OFFICIAL_CASES])
def test_official_accuracy(case, prediction, answers, expected):
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("t-shirt", "t shirt"),  # no space touches the hyphen: it becomes one
        ("t - shirt", "t shirt"),  # a space touches it: it goes
        ("1,000 red-ish", "1000 redish"),  # a comma between digits anywhere: every mark just goes
        ("3.5 kg.", "3.5 kg"),  # a period before a digit stays
        ("None of the two", "0 of 2"),
        ("hed've", "he'd've"),
    ],
)
def test_official_normalisation(text, expected):
    assert normalize_vqa_answer(text) == expected


def test_normalized_variant_keeps_the_earlier_scorer():
    assert vqa_accuracy_normalized("2", ["two"] * 10) == 1.0
    assert vqa_accuracy_normalized("Yes", ["yes"] * 10) == 1.0
    assert vqa_accuracy_normalized("red", ["red"] * 3 + ["blue"] * 7) == pytest.approx(0.9)
    [official, normalized] = (
        get_reward(name)(["<answer>2</answer>"], solution=[["two"] * 10]) for name in ("vqa_accuracy", "vqa_accuracy_normalized")
    )
    assert (official, normalized) == ([0.0], [1.0])
