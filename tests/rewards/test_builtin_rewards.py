"""Table-driven tests of the built-in rewards: (case, completion, ground truth, expected score)."""

import pytest

from mmrft.rewards import get_reward

THINK = "<think>the red one is on the left</think>"


def _one(name, completion, **columns):
    [score] = get_reward(name)([completion], **{k: [v] for k, v in columns.items()})
    return score


FORMAT_CASES = [
    ("think+answer", f"{THINK}<answer>cat</answer>", 1.0, 0.0),
    ("whitespace around", f"\n {THINK}\n\n<answer> cat </answer>\n", 1.0, 0.0),
    ("answer only", "<answer>cat</answer>", 0.0, 1.0),
    ("answer only, padded", "  <answer>cat</answer>\n", 0.0, 1.0),
    ("empty", "", 0.0, 0.0),
    ("empty answer", f"{THINK}<answer> </answer>", 0.0, 0.0),
    ("empty think", "<think></think><answer>cat</answer>", 0.0, 0.0),
    ("text after", f"{THINK}<answer>cat</answer> done", 0.0, 0.0),
    ("text before", f"Sure! {THINK}<answer>cat</answer>", 0.0, 0.0),
    ("two answers", f"{THINK}<answer>cat</answer><answer>dog</answer>", 0.0, 0.0),
    ("two answers, no think", "<answer>cat</answer><answer>dog</answer>", 0.0, 0.0),
    ("two thinks", f"{THINK}{THINK}<answer>cat</answer>", 0.0, 0.0),
    ("answer before think", f"<answer>cat</answer>{THINK}", 0.0, 0.0),
    ("nested answer", f"{THINK}<answer><answer>cat</answer></answer>", 0.0, 0.0),
    ("think inside answer", "<answer><think>x</think>cat</answer>", 0.0, 0.0),
    ("unclosed", f"{THINK}<answer>cat", 0.0, 0.0),
    ("unicode", "<think>猫がいる</think><answer>猫</answer>", 1.0, 0.0),
]


@pytest.mark.parametrize("case, completion, think, nothink", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_format(case, completion, think, nothink):
    assert _one("format", completion) == think
    assert _one("format_nothink", completion) == nothink


IMAGE = [640, 480]
GT = [64, 48, 320, 400]
BOX_CASES = [
    # case, completion, solution, extra columns, expected
    ("exact", "<answer>[64, 48, 320, 400]</answer>", GT, {}, 1.0),
    ("parentheses", "<answer>(64,48,320,400)</answer>", GT, {}, 1.0),
    ("bare numbers", "<answer>64, 48, 320, 400</answer>", GT, {}, 1.0),
    ("half overlap", "<answer>[192, 48, 448, 400]</answer>", GT, {}, 1 / 3),
    ("norm1000", "<answer>[100, 100, 500, 833.333333]</answer>", GT,
     {"coord_convention": "norm1000"}, pytest.approx(1.0)),
    ("input pixels", "<answer>[64.4, 47.6, 322, 396.666667]</answer>", GT,
     {"coord_convention": "input_pixels", "input_size": [644, 476]}, pytest.approx(1.0)),
    ("norm1000 read as pixels", "<answer>[100, 100, 500, 833]</answer>", GT, {}, pytest.approx(66000 / 176112)),
    ("out of image, clipped", "<answer>[-100, -100, 320, 400]</answer>", [0, 0, 320, 400], {}, 1.0),
    ("beyond the image", "<answer>[700, 500, 900, 600]</answer>", GT, {}, 0.0),
    ("inverted", "<answer>[320, 400, 64, 48]</answer>", GT, {}, 0.0),
    ("last block wins", "<answer>[0, 0, 10, 10]</answer><answer>[64, 48, 320, 400]</answer>", GT, {}, 1.0),
    ("echoed prompt", "Answer like <answer>[64, 48, 320, 400]</answer>. <answer>[0, 0, 10, 10]</answer>",
     GT, {}, 0.0),
    ("two boxes", "<answer>[64, 48, 320, 400], [0, 0, 5, 5]</answer>", GT, {}, 0.0),
    ("three numbers", "<answer>[64, 48, 320]</answer>", GT, {}, 0.0),
    ("nan", "<answer>[nan, 48, 320, 400]</answer>", GT, {}, 0.0),
    ("huge", "<answer>[64, 48, 1e9, 400]</answer>", GT, {}, 0.0),
    ("no answer block", "[64, 48, 320, 400]", GT, {}, 0.0),
    ("empty", "", GT, {}, 0.0),
    ("unicode", "<answer>[６４, 48, 320, 400]</answer>", GT, {}, 0.0),
    ("gt as text", "<answer>[64, 48, 320, 400]</answer>", "[64, 48, 320, 400]", {}, 1.0),
    ("gt malformed", "<answer>[64, 48, 320, 400]</answer>", [64, 48, 320], {}, None),
    ("gt inverted", "<answer>[64, 48, 320, 400]</answer>", [320, 400, 64, 48], {}, None),
    ("gt nan", "<answer>[64, 48, 320, 400]</answer>", [float("nan"), 48, 320, 400], {}, None),
    ("gt not numbers", "<answer>[64, 48, 320, 400]</answer>", ["a", "b", "c", "d"], {}, None),
]


@pytest.mark.parametrize("case, completion, solution, columns, expected", BOX_CASES, ids=[c[0] for c in BOX_CASES])
def test_box_iou(case, completion, solution, columns, expected):
    assert _one("box_iou", completion, solution=solution, image_size=IMAGE, **columns) == expected


def test_box_iou_batch_with_mixed_conventions_and_messages():
    reward = get_reward("box_iou")
    scores = reward(
        [
            [{"role": "assistant", "content": "<answer>[100, 100, 500, 833.333333]</answer>"}],
            "<answer>[64, 48, 320, 400]</answer>",
        ],
        solution=[GT, GT],
        image_size=[IMAGE, IMAGE],
        coord_convention=["norm1000", None],
        prompts=["ignored", "ignored"],
        trainer_state=object(),
    )
    assert scores == [pytest.approx(1.0), 1.0]


LABEL_CASES = [
    ("exact", "<answer>cat</answer>", "cat", 1.0),
    ("case and article", "<answer>The Cat.</answer>", "cat", 1.0),
    ("synonym", "<answer>kitten</answer>", ["cat", "kitten"], 1.0),
    ("wrong", "<answer>dog</answer>", "cat", 0.0),
    ("hedged or", "<answer>cat or dog</answer>", "cat", 0.0),
    ("hedged slash", "<answer>cat/dog</answer>", "cat", 0.0),
    ("list", "<answer>cat, dog</answer>", "cat", 0.0),
    ("either", "<answer>either cat</answer>", "cat", 0.0),
    ("both synonyms", "<answer>cat, kitten</answer>", ["cat", "kitten"], 0.0),
    ("sentence", "<answer>It is a cat</answer>", "cat", 0.0),
    ("empty answer", "<answer></answer>", "cat", 0.0),
    ("empty", "", "cat", 0.0),
    ("no block", "cat", "cat", 0.0),
    ("last block wins", "<answer>dog</answer><answer>cat</answer>", "cat", 1.0),
    ("echoed prompt", "e.g. <answer>cat</answer>\n<answer>dog</answer>", "cat", 0.0),
    ("multi-word label", "<answer>traffic light</answer>", "traffic-light", 1.0),
    ("unicode", "<answer>Café</answer>", "café", 1.0),
    ("empty solution", "<answer>cat</answer>", "", None),
    ("solution not a label", "<answer>cat</answer>", 3, None),
]


@pytest.mark.parametrize("case, completion, solution, expected", LABEL_CASES, ids=[c[0] for c in LABEL_CASES])
def test_classification(case, completion, solution, expected):
    assert _one("classification", completion, solution=solution) == expected


COUNT_CASES = [
    ("digits", "<answer>3</answer>", 3, 1.0),
    ("word", "<answer>Three</answer>", 3, 1.0),
    ("twenty", "<answer>twenty</answer>", 20, 1.0),
    ("trailing stop", "<answer>3.</answer>", 3, 1.0),
    ("wrong", "<answer>4</answer>", 3, 0.0),
    ("hedged", "<answer>3 or 4</answer>", 3, 0.0),
    ("range", "<answer>3-4</answer>", 3, 0.0),
    ("sentence", "<answer>there are 3</answer>", 3, 0.0),
    ("decimal", "<answer>3.0</answer>", 3, 0.0),
    ("huge", f"<answer>{'9' * 5000}</answer>", 3, 0.0),
    ("empty", "", 3, 0.0),
    ("last block wins", "<answer>4</answer><answer>3</answer>", 3, 1.0),
    ("unicode digit", "<answer>٣</answer>", 3, 0.0),
    ("solution as text", "<answer>3</answer>", "3", 1.0),
    ("solution missing", "<answer>3</answer>", None, None),
    ("solution bool", "<answer>1</answer>", True, None),
]


@pytest.mark.parametrize("case, completion, solution, expected", COUNT_CASES, ids=[c[0] for c in COUNT_CASES])
def test_count(case, completion, solution, expected):
    assert _one("count", completion, solution=solution) == expected
