"""Property: no built-in reward raises on arbitrary text, and every score is in its declared range."""

from hypothesis import given, settings
from hypothesis import strategies as st

from mmrft.rewards import list_rewards

# Text biased towards the pieces parsers look for, mixed with arbitrary unicode.
PIECES = ["<think>", "</think>", "<answer>", "</answer>", "[", "]", "(", ")", ",", " ", "\n", "-", ".", "e",
          "1", "0", "640", "1e9", "nan", "inf", "three", "or", "/", "cat", "The"]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=30).map("".join)

COLUMNS = {
    "format": {},
    "format_nothink": {},
    "box_iou": {"solution": [64, 48, 320, 400], "image_size": [640, 480], "input_size": [644, 476],
                "coord_convention": "input_pixels"},
    "classification": {"solution": ["cat", "kitten"]},
    "count": {"solution": 3},
}


@settings(max_examples=150, deadline=None)
@given(completion=texts, as_messages=st.booleans())
def test_rewards_total_and_in_range(completion, as_messages):
    if as_messages:
        completion = [{"role": "assistant", "content": completion}]
    for spec in list_rewards():
        columns = {k: [v] for k, v in COLUMNS[spec.name].items()}
        [score] = spec.fn([completion], **columns, unused_column=[None])
        assert score is None or spec.range[0] <= score <= spec.range[1], (spec.name, completion, score)
