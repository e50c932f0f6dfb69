"""Grounding rewards in original-image pixels: box IoU and GIoU, and GUI point-in-box."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mmrft.rewards.coords import Size, box_giou, box_iou, clip_box, to_original
from mmrft.rewards.parsing import completion_text, extract_answer, parse_box, parse_point
from mmrft.rewards.registry import register_reward


def ground_truth_box(solution: Any, image_size: Size) -> list[float] | None:
    """The solution as a clipped xyxy pixel box, or None if it is not 4 finite numbers with positive area.

    `solution` may be a sequence of numbers or its text form (`"[x1, y1, x2, y2]"`).
    """
    if isinstance(solution, str):
        box = parse_box(solution)
    elif isinstance(solution, Sequence) and len(solution) == 4 and all(_is_number(v) for v in solution):
        box = [float(v) for v in solution]
    else:
        return None
    if box is None or not all(math.isfinite(v) for v in box):
        return None
    x1, y1, x2, y2 = box = clip_box(box, image_size)
    return box if x2 > x1 and y2 > y1 else None


def answered_box(text: str, image_size: Size, input_size: Size | None = None, convention: str = "pixels") -> list[float] | None:
    """The last answer block's box converted from `convention` to original pixels and clipped; None if malformed."""
    answer = extract_answer(text)
    box = parse_box(answer) if answer is not None else None
    if box is None:
        return None
    return clip_box(to_original(box, convention, image_size, input_size), image_size)


def score_box(
    text: str, solution: Any, image_size: Size, input_size: Size | None = None, convention: str = "pixels"
) -> float | None:
    """IoU of the last answer block's box (in `convention`) with `solution` (original pixels).

    None when the solution is malformed (the reward does not apply); 0.0 when the answer is.
    """
    gt = ground_truth_box(solution, image_size)
    if gt is None:
        return None
    box = answered_box(text, image_size, input_size, convention)
    return 0.0 if box is None else box_iou(box, gt)


def score_box_giou(
    text: str, solution: Any, image_size: Size, input_size: Size | None = None, convention: str = "pixels"
) -> float | None:
    """GIoU of the answered box with `solution`, in [-1, 1]; -1.0 for a malformed or degenerate answer."""
    gt = ground_truth_box(solution, image_size)
    if gt is None:
        return None
    box = answered_box(text, image_size, input_size, convention)
    return -1.0 if box is None else box_giou(box, gt)


def score_point(
    text: str, solution: Any, image_size: Size, input_size: Size | None = None, convention: str = "pixels"
) -> float | None:
    """1.0 if the answered point lies in the solution box, boundaries included (GUI grounding), else 0.0.

    The answer is a point `(x, y)` or a box, which stands for its centre; both in `convention`.
    """
    gt = ground_truth_box(solution, image_size)
    if gt is None:
        return None
    answer = extract_answer(text)
    if answer is None:
        return 0.0
    point = parse_point(answer)
    if point is None:
        box = parse_box(answer)
        if box is None or box[2] < box[0] or box[3] < box[1]:
            return 0.0
        point = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
    x, y, _, _ = to_original([*point, *point], convention, image_size, input_size)
    return float(gt[0] <= x <= gt[2] and gt[1] <= y <= gt[3])


def score_image_columns(score, completions, solution, image_size, input_size, coord_convention) -> list:
    """``score(text, solution, image_size, input_size, convention)`` for each completion, with the
    optional ``input_size`` / ``coord_convention`` columns defaulted (convention: "pixels")."""
    n = len(completions)
    input_size = input_size or [None] * n
    coord_convention = coord_convention or [None] * n
    return [
        score(completion_text(c), gt, size, inp, conv or "pixels")
        for c, gt, size, inp, conv in zip(completions, solution, image_size, input_size, coord_convention, strict=True)
    ]


@register_reward("box_iou", description="IoU of the answered box with the ground-truth box (original pixels)")
def box_iou_reward(
    completions: list[Any],
    solution: list[Any],
    image_size: list[Size],
    input_size: list[Size | None] | None = None,
    coord_convention: list[str | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """Columns: `solution` (xyxy original pixels), `image_size` and `input_size` as (w, h),
    `coord_convention` (per sample; "pixels" when the column is missing)."""
    return score_image_columns(score_box, completions, solution, image_size, input_size, coord_convention)


@register_reward(
    "box_giou", range=(-1.0, 1.0), description="GIoU of the answered box with the ground truth; -1 if malformed"
)
def box_giou_reward(
    completions: list[Any],
    solution: list[Any],
    image_size: list[Size],
    input_size: list[Size | None] | None = None,
    coord_convention: list[str | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """Columns as `box_iou`."""
    return score_image_columns(score_box_giou, completions, solution, image_size, input_size, coord_convention)


@register_reward(
    "point_in_box", description="1 if the answered point (or a box's centre) lies in the target box, inclusive"
)
def point_in_box_reward(
    completions: list[Any],
    solution: list[Any],
    image_size: list[Size],
    input_size: list[Size | None] | None = None,
    coord_convention: list[str | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """GUI grounding. Columns as `box_iou`; the answer is `(x, y)` or a box in the model's convention."""
    return score_image_columns(score_point, completions, solution, image_size, input_size, coord_convention)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
