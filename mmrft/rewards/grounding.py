"""Grounding reward: IoU of the answered box with the ground-truth box, in original-image pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mmrft.rewards.coords import Size, box_iou, clip_box, to_original
from mmrft.rewards.parsing import completion_text, extract_answer, parse_box
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


def score_box(
    text: str, solution: Any, image_size: Size, input_size: Size | None = None, convention: str = "pixels"
) -> float | None:
    """IoU of the last answer block's box (in `convention`) with `solution` (original pixels).

    None when the solution is malformed (the reward does not apply); 0.0 when the answer is.
    """
    gt = ground_truth_box(solution, image_size)
    if gt is None:
        return None
    answer = extract_answer(text)
    box = parse_box(answer) if answer is not None else None
    if box is None:
        return 0.0
    return box_iou(clip_box(to_original(box, convention, image_size, input_size), image_size), gt)


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
    n = len(completions)
    input_size = input_size or [None] * n
    coord_convention = coord_convention or [None] * n
    return [
        score_box(completion_text(c), gt, size, inp, conv or "pixels")
        for c, gt, size, inp, conv in zip(completions, solution, image_size, input_size, coord_convention, strict=True)
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
