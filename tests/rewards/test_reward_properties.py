"""Property: no built-in reward raises on arbitrary text, and every score is in its declared range."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mmrft.rewards import list_rewards

# Text biased towards the pieces parsers look for, mixed with arbitrary unicode.
PIECES = ["<think>", "</think>", "<answer>", "</answer>", "[", "]", "(", ")", "{", "}", ",", " ", "\n", "-", ".",
          "e", "1", "0", "640", "1e9", "nan", "NaN", "inf", "three", "or", "/", "cat", "The", "B", "to", "s",
          '"bbox_2d": ', '"confidence": ', "null", "\\frac{1}{2}", "\\boxed{", "$", "x", "^"]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=30).map("".join)

IMAGE = {"image_size": [640, 480], "input_size": [644, 476], "coord_convention": "input_pixels"}
COLUMNS = {
    "format": {},
    "format_nothink": {},
    "length_penalty": {"max_chars": 20},
    "repetition_penalty": {},
    "box_iou": {"solution": [64, 48, 320, 400], **IMAGE},
    "box_giou": {"solution": [64, 48, 320, 400], **IMAGE},
    "point_in_box": {"solution": [64, 48, 320, 400], **IMAGE},
    "detection_iou": {"solution": [[64, 48, 320, 400], [0, 0, 10, 10]], **IMAGE},
    "detection_confidence": {"solution": [{"bbox": [64, 48, 320, 400], "label": "cat"}], **IMAGE},
    "track_iou": {"solution": [[0, 0, 10, 10], None], **IMAGE},
    "classification": {"solution": ["cat", "kitten"]},
    "classification_exact": {"solution": "cat"},
    "count": {"solution": 3},
    "multiple_choice": {"solution": "B", "options": ["cat", "dog", "owl"]},
    "vqa_accuracy": {"solution": ["two"] * 7 + ["2", "three", "cat"]},
    "vqa_accuracy_normalized": {"solution": ["two"] * 7 + ["2", "three", "cat"]},
    "math": {"solution": "\\frac{1}{2}"},
    "mathvista": {"solution": "12", "answer_type": "integer"},
    "temporal_iou": {"solution": [1.0, 9.0], "duration": 10.0},
    "trajectory": {"solution": [[1, 0], [2, 0], [3, 0]], "obstacles": [[[2, 1, 0, 4, 2]]] * 3,
                   "road": [[-9, -9], [9, -9], [9, 9], [-9, 9]]},
    "driving_rollout": {"goal": [3, 0], "obstacles": [[[2, 1, 0, 4, 2]]] * 3, "road": [[-9, -9], [9, -9], [9, 9], [-9, 9]]},
}


def test_every_builtin_has_property_columns():
    assert {spec.name for spec in list_rewards()} == set(COLUMNS)


@settings(max_examples=150, deadline=None)
@given(completion=texts, as_messages=st.booleans())
def test_rewards_total_and_in_range(completion, as_messages):
    if as_messages:
        completion = [{"role": "assistant", "content": completion}]
    for spec in list_rewards():
        columns = {k: [v] for k, v in COLUMNS[spec.name].items()}
        [score] = spec.fn([completion], **columns, unused_column=[None])
        assert score is None or (math.isfinite(score) and spec.range[0] <= score <= spec.range[1]), (
            spec.name, completion, score)
        if spec.components is not None:
            spec.components([completion], **columns)
