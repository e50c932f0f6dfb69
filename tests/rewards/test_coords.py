import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from mmrft.rewards.coords import (
    MODEL_COORD_CONVENTION,
    box_iou,
    clip_box,
    format_box,
    from_original,
    to_original,
)

IMAGE = (640, 480)  # original (width, height)
INPUT = (644, 476)  # Qwen2.5-VL resize to multiples of 28: differs from the original in both axes
GT = [64.0, 48.0, 320.0, 400.0]


@pytest.mark.parametrize(
    "convention, written",
    [
        ("pixels", [64, 48, 320, 400]),
        ("unit", [0.1, 0.1, 0.5, 400 / 480]),
        ("norm1000", [100, 100, 500, 400 / 480 * 1000]),
        ("input_pixels", [64 * 644 / 640, 48 * 476 / 480, 320 * 644 / 640, 400 * 476 / 480]),
    ],
)
def test_conventions_round_trip(convention, written):
    assert from_original(GT, convention, IMAGE, INPUT) == pytest.approx(written)
    assert to_original(written, convention, IMAGE, INPUT) == pytest.approx(GT)
    assert to_original(from_original(GT, convention, IMAGE, INPUT), convention, IMAGE, INPUT) == pytest.approx(GT)


def test_sft_target_rendering():
    assert format_box(from_original(GT, "norm1000", IMAGE)) == "[100, 100, 500, 833]"
    assert format_box(from_original(GT, "input_pixels", IMAGE, INPUT)) == "[64, 48, 322, 397]"


def test_input_pixels_needs_input_size():
    with pytest.raises(ValueError, match="input_size"):
        to_original(GT, "input_pixels", IMAGE)


def test_unknown_convention_lists_known():
    with pytest.raises(ValueError, match="norm1000"):
        to_original(GT, "qwen", IMAGE)


def test_model_conventions():
    assert MODEL_COORD_CONVENTION == {"qwen2_vl": "norm1000", "qwen2_5_vl": "input_pixels", "qwen3_vl": "norm1000"}


@pytest.mark.parametrize(
    "box, expected",
    [
        ([-10, -5, 700, 500], [0, 0, 640, 480]),
        ([700, 500, 800, 600], [640, 480, 640, 480]),
        ([10, 20, 30, 40], [10, 20, 30, 40]),
    ],
)
def test_clip_box(box, expected):
    assert clip_box(box, IMAGE) == expected


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([10, 0, 0, 10], [0, 0, 10, 10], 0.0),  # inverted
        ([0, 0, 0, 10], [0, 0, 10, 10], 0.0),  # zero width
        ([0, 0, 10, 10], [0, 0, 0, 0], 0.0),
    ],
)
def test_box_iou_table(a, b, expected):
    assert box_iou(a, b) == pytest.approx(expected)


def test_box_iou_matches_torchvision():
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=gen) * 500
    wh = torch.rand(200, 2, generator=gen) * 200 + 0.5
    boxes = torch.cat([xy, xy + wh], dim=1).double()
    a, b = boxes[:100], boxes[100:]
    expected = tv_box_iou(a, b).diagonal()
    ours = torch.tensor([box_iou(x.tolist(), y.tolist()) for x, y in zip(a, b, strict=True)], dtype=torch.float64)
    assert (expected > 0).sum() > 5  # the sample exercises overlapping pairs
    torch.testing.assert_close(ours, expected)
    # and against translated copies, so most pairs overlap
    shift = torch.rand(100, 2, generator=gen).double() * 20
    shifted = a + torch.cat([shift, shift], dim=1)
    expected = tv_box_iou(a, shifted).diagonal()
    ours = torch.tensor([box_iou(x.tolist(), y.tolist()) for x, y in zip(a, shifted, strict=True)], dtype=torch.float64)
    torch.testing.assert_close(ours, expected)
