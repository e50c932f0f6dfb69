import pytest

from mmrft.rewards.parsing import completion_text, extract_answer, normalize_label, parse_box, parse_int


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "hi"}], "hi"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "ab"),
        ([{"role": "assistant", "content": None}], ""),
        ([], ""),
    ],
)
def test_completion_text(completion, expected):
    assert completion_text(completion) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer> cat </answer>", "cat"),
        ("", None),
        ("no tags", None),
        ("<answer>unclosed", None),
        ("</answer> closed only", None),
        ("<answer>first</answer> then <answer>last</answer>", "last"),
        (
            "Prompt: reply like <answer>[0, 0, 1, 1]</answer>.\n<think>hm</think><answer>[5, 5, 9, 9]</answer>",
            "[5, 5, 9, 9]",
        ),
        ("<answer><answer>inner</answer>", "inner"),
        ("<answer></answer>", ""),
        ("<answer>\nmulti\nline\n</answer>", "multi\nline"),
        ("<answer>猫 🐱</answer>", "猫 🐱"),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[12, 30, 55, 80]", [12, 30, 55, 80]),
        ("(12,30,55,80)", [12, 30, 55, 80]),
        ("12, 30, 55, 80", [12, 30, 55, 80]),
        (" [1.5, -2, .5, 3e2] ", [1.5, -2, 0.5, 300]),
        ("[12, 30, 55]", None),
        ("[12, 30, 55, 80, 90]", None),
        ("[12, 30, 55, 80)", None),
        ("[[12, 30, 55, 80]]", None),
        ("box: [12, 30, 55, 80]", None),
        ("[12, 30, 55, 80] [1, 2, 3, 4]", None),
        ("[nan, 0, 1, 1]", None),
        ("[inf, 0, 1, 1]", None),
        ("[1e400, 0, 1, 1]", None),
        ("[2000000, 0, 1, 1]", None),
        ("[١٢, 30, 55, 80]", None),  # Arabic-Indic digits are not accepted
        ("", None),
    ],
)
def test_parse_box(text, expected):
    assert parse_box(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", 3), (" 12. ", 12), ("Seven", 7), ("twenty", 20), ("zero", 0), ("-1", -1),
        ("twenty-one", None), ("3 cats", None), ("3 or 4", None), ("3.5", None), ("", None),
        ("9" * 5000, None), ("٣", None),
    ],
)
def test_parse_int(text, expected):
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Red Car.", "red car"),
        ("  an   apple! ", "apple"),
        ("T-shirt", "t shirt"),
        ("Café", "café"),
        ("ＲＥＤ", "red"),  # full-width letters fold under NFKC
        ("the", ""),
    ],
)
def test_normalize_label(text, expected):
    assert normalize_label(text) == expected
