"""Table-driven tests of the verifiers added for issue 3: (case, completion, ground truth, expected score)."""

import pytest

from mmrft.rewards import get_reward
from mmrft.rewards.answers import parse_choice
from mmrft.rewards.temporal import multi_segment_iou, parse_intervals, temporal_iou
from mmrft.rewards.vqa import normalize_vqa_answer, vqa_accuracy


def _one(name, completion, **columns):
    [score] = get_reward(name)([completion], **{k: [v] for k, v in columns.items()})
    return score


IMAGE = [640, 480]
GT = [64, 48, 320, 400]
# GIoU: identical 1; half overlap iou 1/3 with hull = union; disjoint: 0 - (hull - union)/hull.
GIOU_CASES = [
    ("exact", "<answer>[64, 48, 320, 400]</answer>", GT, {}, 1.0),
    ("half overlap", "<answer>[192, 48, 448, 400]</answer>", GT, {}, pytest.approx(1 / 3)),
    ("disjoint", "<answer>[0, 0, 10, 10]</answer>", [20, 0, 30, 10], {}, pytest.approx(0 - (300 - 200) / 300)),
    ("norm1000", "<answer>[100, 100, 500, 833.333333]</answer>", GT, {"coord_convention": "norm1000"},
     pytest.approx(1.0)),
    ("inverted", "<answer>[320, 400, 64, 48]</answer>", GT, {}, -1.0),
    ("outside image collapses", "<answer>[700, 500, 900, 600]</answer>", GT, {}, -1.0),
    ("malformed", "<answer>[64, 48, 320]</answer>", GT, {}, -1.0),
    ("no answer", "", GT, {}, -1.0),
    ("hedged two boxes", "<answer>[64, 48, 320, 400] or [0, 0, 1, 1]</answer>", GT, {}, -1.0),
    ("gt malformed", "<answer>[64, 48, 320, 400]</answer>", [1, 2], {}, None),
]


@pytest.mark.parametrize("case, completion, solution, columns, expected", GIOU_CASES, ids=[c[0] for c in GIOU_CASES])
def test_box_giou(case, completion, solution, columns, expected):
    assert _one("box_giou", completion, solution=solution, image_size=IMAGE, **columns) == expected


POINT_CASES = [
    ("inside", "<answer>(100, 100)</answer>", {}, 1.0),
    ("brackets", "<answer>[100, 100]</answer>", {}, 1.0),
    ("bare", "<answer>100,100</answer>", {}, 1.0),
    ("left edge inclusive", "<answer>(64, 100)</answer>", {}, 1.0),
    ("corner inclusive", "<answer>(320, 400)</answer>", {}, 1.0),
    ("just outside", "<answer>(320.01, 100)</answer>", {}, 0.0),
    ("box centre inside", "<answer>[100, 100, 200, 200]</answer>", {}, 1.0),
    ("box centre outside", "<answer>[0, 0, 100, 60]</answer>", {}, 0.0),
    ("inverted box", "<answer>[200, 200, 100, 100]</answer>", {}, 0.0),
    ("norm1000 point", "<answer>(500, 500)</answer>", {"coord_convention": "norm1000"}, 1.0),
    ("norm1000 read as pixels", "<answer>(900, 900)</answer>", {}, 0.0),
    ("input pixels", "<answer>(322, 238)</answer>", {"coord_convention": "input_pixels", "input_size": [644, 476]},
     1.0),
    ("two points", "<answer>(100, 100), (5, 5)</answer>", {}, 0.0),
    ("three numbers", "<answer>(100, 100, 3)</answer>", {}, 0.0),
    ("nan", "<answer>(nan, 100)</answer>", {}, 0.0),
    ("negative", "<answer>(-100, 100)</answer>", {}, 0.0),
    ("last block wins", "<answer>(0, 0)</answer><answer>(100, 100)</answer>", {}, 1.0),
    ("no block", "(100, 100)", {}, 0.0),
    ("unicode digits", "<answer>(１００, 100)</answer>", {}, 0.0),
]


@pytest.mark.parametrize("case, completion, columns, expected", POINT_CASES, ids=[c[0] for c in POINT_CASES])
def test_point_in_box(case, completion, columns, expected):
    assert _one("point_in_box", completion, solution=GT, image_size=IMAGE, **columns) == expected


EXACT_CASES = [
    ("bare label", "cat", "cat", 1.0),
    ("bare, case and punctuation", " The Cat. ", "cat", 1.0),
    ("one answer block", "<answer>cat</answer>", "cat", 1.0),
    ("synonym", "kitten", ["cat", "kitten"], 1.0),
    ("sentence", "It is a cat", "cat", 0.0),
    ("thinking first", "<think>furry</think><answer>cat</answer>", "cat", 0.0),
    ("text after block", "<answer>cat</answer> sure", "cat", 0.0),
    ("two blocks", "<answer>dog</answer><answer>cat</answer>", "cat", 0.0),
    ("hedged", "cat or dog", "cat", 0.0),
    ("empty", "", "cat", 0.0),
    ("unclosed tag", "<answer>cat", "cat", 0.0),
    ("unicode", "Café", "café", 1.0),
    ("no label", "cat", "", None),
]


@pytest.mark.parametrize("case, completion, solution, expected", EXACT_CASES, ids=[c[0] for c in EXACT_CASES])
def test_classification_exact(case, completion, solution, expected):
    assert _one("classification_exact", completion, solution=solution) == expected


OPTIONS = ["red", "green", "blue", "yellow"]
CHOICE_CASES = [
    ("letter", "<answer>B</answer>", "B", OPTIONS, 1.0),
    ("lower case", "<answer>b</answer>", "B", OPTIONS, 1.0),
    ("parenthesised", "<answer>(B)</answer>", "B", OPTIONS, 1.0),
    ("with stop", "<answer>B.</answer>", "B", OPTIONS, 1.0),
    ("option word", "<answer>Option B</answer>", "B", OPTIONS, 1.0),
    ("letter and text", "<answer>B. green</answer>", "B", OPTIONS, 1.0),
    ("text only", "<answer>Green</answer>", "B", OPTIONS, 1.0),
    ("index solution", "<answer>B</answer>", 1, OPTIONS, 1.0),
    ("text solution", "<answer>B</answer>", "green", OPTIONS, 1.0),
    ("no options", "<answer>C</answer>", "C", None, 1.0),
    ("wrong", "<answer>A</answer>", "B", OPTIONS, 0.0),
    ("letter with wrong text", "<answer>B. red</answer>", "B", OPTIONS, 0.0),
    ("hedged or", "<answer>A or B</answer>", "B", OPTIONS, 0.0),
    ("hedged list", "<answer>A, B</answer>", "B", OPTIONS, 0.0),
    ("letters run together", "<answer>AB</answer>", "B", OPTIONS, 0.0),
    ("because", "<answer>B because it is green</answer>", "B", OPTIONS, 0.0),
    ("out of range", "<answer>F</answer>", "B", OPTIONS, 0.0),
    ("text of two", "<answer>green or blue</answer>", "B", OPTIONS, 0.0),
    ("empty", "<answer></answer>", "B", OPTIONS, 0.0),
    ("no block", "B", "B", OPTIONS, 0.0),
    ("last block wins", "<answer>A</answer><answer>B</answer>", "B", OPTIONS, 1.0),
    ("echoed prompt", "like <answer>B</answer>\n<answer>A</answer>", "B", OPTIONS, 0.0),
    ("unicode letter", "<answer>Ｂ</answer>", "B", OPTIONS, 0.0),
    ("solution missing", "<answer>B</answer>", None, OPTIONS, None),
    ("solution not an option", "<answer>B</answer>", "purple", OPTIONS, None),
]


@pytest.mark.parametrize("case, completion, solution, options, expected", CHOICE_CASES, ids=[c[0] for c in CHOICE_CASES])
def test_multiple_choice(case, completion, solution, options, expected):
    assert _one("multiple_choice", completion, solution=solution, options=options) == expected


def test_parse_choice_without_options_rejects_trailing_text():
    assert parse_choice("B. green") is None
    assert parse_choice("B") == "B"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Two", "2"), ("the dog", "dog"), ("dont", "don't"), ("yes.", "yes"), ("3.5", "3.5"),
        ("red, white", "red white"), ("1,000", "1000"), ("a  man\n", "man"), ("none", "0"), ("t-shirt", "t shirt"),
    ],
)
def test_normalize_vqa_answer(text, expected):
    assert normalize_vqa_answer(text) == expected


VQA_CASES = [
    ("ten 'two', predicted 2: no normalisation when all agree", "<answer>2</answer>", ["two"] * 10, 0.0),
    ("nine 'two' and one '2', predicted 2", "<answer>2</answer>", ["two"] * 9 + ["2"], 1.0),
    ("three of ten agree", "<answer>red</answer>", ["red"] * 3 + ["blue"] * 7, pytest.approx(0.9)),
    ("one of ten", "<answer>red</answer>", ["red"] + ["blue"] * 9, pytest.approx(0.3)),
    ("two of ten", "<answer>red</answer>", ["red"] * 2 + ["blue"] * 8, pytest.approx(0.6)),
    ("four of ten", "<answer>red</answer>", ["red"] * 4 + ["blue"] * 6, 1.0),
    ("none agree", "<answer>green</answer>", ["red"] * 10, 0.0),
    ("articles and case", "<answer>The Dog</answer>", ["dog"] * 9 + ["a dog"], 1.0),
    ("case when all agree", "<answer>The Dog</answer>", ["dog"] * 10, 0.0),
    ("single answer", "<answer>yes</answer>", "Yes.", 1.0),
    ("empty answer", "<answer></answer>", ["yes"] * 10, 0.0),
    ("no block", "yes", ["yes"] * 10, 0.0),
    ("hedged", "<answer>yes or no</answer>", ["yes"] * 10, 0.0),
    ("no annotators", "<answer>yes</answer>", [], None),
    ("annotators not text", "<answer>yes</answer>", [1, 2], None),
]


@pytest.mark.parametrize("case, completion, solution, expected", VQA_CASES, ids=[c[0] for c in VQA_CASES])
def test_vqa_accuracy(case, completion, solution, expected):
    assert _one("vqa_accuracy", completion, solution=solution) == expected


def test_vqa_accuracy_is_leave_one_out_mean():
    # 3 matches: subsets leaving out a match see 2 (2/3), the other 7 see 3 (1): (3 * 2/3 + 7) / 10 = 0.9
    assert vqa_accuracy("red", ["red"] * 3 + ["x"] * 7) == pytest.approx(0.9)


MATH_CASES = [
    ("fraction vs decimal", "<answer>0.5</answer>", "\\frac{1}{2}", 1.0),
    ("boxed in text", "so the result is \\boxed{\\frac{1}{2}}", "0.5", 1.0),
    ("equivalent expression", "<answer>$2x+2$</answer>", "$2(x+1)$", 1.0),
    ("wrong", "<answer>3</answer>", "2", 0.0),
    ("empty", "", "2", 0.0),
    ("garbage", "<answer>}{}{\\frac</answer>", "2", 0.0),
    ("numeric solution", "<answer>4</answer>", 4, 1.0),
    ("no solution", "<answer>4</answer>", "", None),
]


@pytest.mark.parametrize("case, completion, solution, expected", MATH_CASES, ids=[c[0] for c in MATH_CASES])
def test_math(case, completion, solution, expected):
    pytest.importorskip("math_verify")
    assert _one("math", completion, solution=solution) == expected


def test_math_matches_math_verify():
    mv = pytest.importorskip("math_verify")
    pairs = [("\\frac{1}{2}", "0.5"), ("$\\sqrt{2}$", "1.41421356"), ("$\\sqrt{2}$", "$\\sqrt{2}$"),
             ("$x^2$", "x*x"), ("3", "\\boxed{3}"), ("$\\pi$", "3.14"), ("$10\\%$", "0.1"),
             ("$\\{1, 2\\}$", "$\\{2, 1\\}$"), ("2", "two"), ("\\sqrt{2}", "1.414")]
    for gold, pred in pairs:
        parsed = mv.parse(gold)
        expected = float(mv.verify(parsed, mv.parse(pred))) if parsed else None  # unparseable gold: not applicable
        assert _one("math", f"<answer>{pred}</answer>", solution=gold) == expected, (gold, pred)


def test_math_without_math_verify(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_math_verify(name, *args, **kwargs):
        if name == "math_verify":
            raise ImportError("No module named 'math_verify'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_math_verify)
    with pytest.raises(ImportError, match="pip install 'math-verify"):
        _one("math", "<answer>1</answer>", solution="1")


TEMPORAL_CASES = [
    ("exact", "<answer>[2.5, 7.5]</answer>", [2.5, 7.5], {}, 1.0),
    ("to, with units", "<answer>2.5s to 7.5s</answer>", [2.5, 7.5], {}, 1.0),
    ("dash", "<answer>2.5 - 7.5</answer>", [2.5, 7.5], {}, 1.0),
    ("half overlap", "<answer>[0, 10]</answer>", [5, 15], {}, pytest.approx(1 / 3)),
    ("disjoint", "<answer>[0, 1]</answer>", [5, 15], {}, 0.0),
    ("reversed prediction", "<answer>[7.5, 2.5]</answer>", [2.5, 7.5], {}, 0.0),
    ("zero length", "<answer>[5, 5]</answer>", [2.5, 7.5], {}, 0.0),
    ("identical points", "<answer>[5, 5]</answer>", [5, 5], {}, 1.0),
    ("clipped to duration", "<answer>[0, 20]</answer>", [5, 10], {"duration": 10}, 0.5),
    ("wholly past the end", "<answer>[20, 30]</answer>", [5, 10], {"duration": 10}, 0.0),
    ("multi-segment", "<answer>[[0, 2], [4, 6]]</answer>", [[1, 5]], {}, pytest.approx(1 / 3)),
    ("multi-segment overlapping pred", "<answer>[0, 3], [2, 5]</answer>", [[0, 5]], {}, 1.0),
    ("hedged", "<answer>[0, 2] or [4, 6]</answer>", [0, 2], {}, 0.0),
    ("three numbers", "<answer>[1, 2, 3]</answer>", [1, 2], {}, 0.0),
    ("negative", "<answer>[-1, 2]</answer>", [1, 2], {}, 0.0),
    ("huge", "<answer>[1, 1e9]</answer>", [1, 2], {}, 0.0),
    ("empty", "", [1, 2], {}, 0.0),
    ("last block wins", "<answer>[0, 1]</answer><answer>[1, 2]</answer>", [1, 2], {}, 1.0),
    ("gt reversed", "<answer>[1, 2]</answer>", [2, 1], {}, None),
    ("gt malformed", "<answer>[1, 2]</answer>", ["a", "b"], {}, None),
    ("gt as text", "<answer>[1, 2]</answer>", "1 to 2", {}, 1.0),
]


@pytest.mark.parametrize("case, completion, solution, columns, expected", TEMPORAL_CASES, ids=[c[0] for c in TEMPORAL_CASES])
def test_temporal_iou(case, completion, solution, columns, expected):
    assert _one("temporal_iou", completion, solution=solution, **columns) == expected


def test_temporal_helpers():
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert multi_segment_iou([(0, 2), (1, 3)], [(0, 3)]) == 1.0
    assert multi_segment_iou([], [(0, 3)]) == 0.0
    assert parse_intervals("[1, 2] [3, 4]") == [(1.0, 2.0), (3.0, 4.0)]
    assert parse_intervals("[1, 2] and [3, 4]") is None


TRACK_GT = [[0, 0, 10, 10], None, [10, 10, 20, 20]]
TRACK_CASES = [
    ("exact", "<answer>[[0, 0, 10, 10], null, [10, 10, 20, 20]]</answer>", 1.0),
    ("absent frame ignored", "<answer>[[0, 0, 10, 10], [50, 50, 60, 60], [10, 10, 20, 20]]</answer>", 1.0),
    ("one frame missed", "<answer>[[0, 0, 10, 10], null, null]</answer>", 0.5),
    ("short track", "<answer>[[0, 0, 10, 10]]</answer>", 0.5),
    ("half overlap each", "<answer>[[5, 0, 15, 10], null, [15, 10, 25, 20]]</answer>", pytest.approx(1 / 3)),
    ("malformed frame", "<answer>[[0, 0, 10], null, null]</answer>", 0.0),
    ("not json", "<answer>[(0, 0, 10, 10)]</answer>", 0.0),
    ("nan", "<answer>[[NaN, 0, 10, 10]]</answer>", 0.0),
    ("empty", "", 0.0),
]


@pytest.mark.parametrize("case, completion, expected", TRACK_CASES, ids=[c[0] for c in TRACK_CASES])
def test_track_iou(case, completion, expected):
    assert _one("track_iou", completion, solution=TRACK_GT, image_size=[100, 100]) == expected


LENGTH_CASES = [("short", "x" * 10, 0.0), ("at budget", "x" * 100, 0.0), ("half over", "x" * 150, -0.5),
                ("double", "x" * 200, -1.0), ("far over", "x" * 1000, -1.0), ("empty", "", 0.0)]


@pytest.mark.parametrize("case, completion, expected", LENGTH_CASES, ids=[c[0] for c in LENGTH_CASES])
def test_length_penalty(case, completion, expected):
    assert _one("length_penalty", completion, max_chars=100) == expected


def test_length_penalty_default_budget():
    assert _one("length_penalty", "x" * 1024) == 0.0
    assert _one("length_penalty", "x" * 2048, max_chars=None) == -1.0


REPETITION_CASES = [
    ("no repeats", "the cat sat on the mat", 0.0),
    ("loop", "go " * 50, pytest.approx(-(1 - 1 / 48))),
    ("half repeated", "a b c a b c", pytest.approx(-0.25)),  # 4 trigrams, 3 distinct
    ("empty", "", 0.0),
    ("cjk loop", "好" * 20, pytest.approx(-(1 - 1 / 18))),
]


@pytest.mark.parametrize("case, completion, expected", REPETITION_CASES, ids=[c[0] for c in REPETITION_CASES])
def test_repetition_penalty(case, completion, expected):
    assert _one("repetition_penalty", completion) == expected
