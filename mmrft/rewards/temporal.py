"""Temporal grounding (intervals in seconds) and tracking (a box per frame).

Interval rules, chosen to be strict like the box rules:

- a reversed predicted interval (end < start) scores 0: swapping would reward sloppy output;
  a reversed ground truth makes the reward not apply (None);
- a zero-length interval has no extent, so its tIoU is 0 unless both intervals are the same point (1);
- with a `duration` column, both intervals are clipped to [0, duration] first (a predicted
  interval wholly outside collapses and scores 0).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from mmrft.rewards.coords import Size, box_iou, clip_box, to_original
from mmrft.rewards.grounding import score_image_columns
from mmrft.rewards.parsing import MAX_COORDINATE, completion_text, extract_answer
from mmrft.rewards.registry import register_reward

Interval = tuple[float, float]

_TIME = r"(\d+(?:\.\d*)?|\.\d+)\s*(?:s|sec|secs|seconds)?"
_PAIR = rf"{_TIME}\s*(?:,|-|–|to)\s*{_TIME}"
_INTERVAL = re.compile(rf"\[\s*{_PAIR}\s*\]|\(\s*{_PAIR}\s*\)|{_PAIR}", re.ASCII | re.IGNORECASE)
_BRACKETED_PAIR = re.compile(rf"[\[(]\s*{_PAIR}\s*[\])]", re.ASCII | re.IGNORECASE)
MAX_SEGMENTS = 50


def parse_interval(text: str) -> Interval | None:
    """Two non-negative times: `[s, e]`, `(s, e)`, `s - e`, `s to e`, optionally with `s` units; else None."""
    match = _INTERVAL.fullmatch(text.strip())
    if match is None:
        return None
    start, end = (float(g) for g in match.groups() if g is not None)
    return (start, end) if _finite(start, end) else None


def parse_intervals(text: str) -> list[Interval] | None:
    """One interval, or a list of bracketed ones (`[[1, 2], [5, 7]]`, `[1, 2], [5, 7]`); else None."""
    single = parse_interval(text)
    if single is not None:
        return [single]
    body = text.strip()
    if body.startswith("[") and body.endswith("]") and body[1:].lstrip().startswith(("[", "(")):
        body = body[1:-1]
    pieces = _BRACKETED_PAIR.findall(body)
    if not pieces or len(pieces) > MAX_SEGMENTS:
        return None
    if _BRACKETED_PAIR.sub("", body).replace(",", "").strip():
        return None  # anything but bracketed pairs and commas
    out = []
    for groups in pieces:
        start, end = (float(g) for g in groups if g)
        if not _finite(start, end):
            return None
        out.append((start, end))
    return out


def temporal_iou(pred: Sequence[float], gt: Sequence[float], duration: float | None = None) -> float:
    """tIoU of two `(start, end)` intervals in seconds, by the rules in the module docstring."""
    (ps, pe), (gs, ge) = _clip(pred, duration), _clip(gt, duration)
    if pe < ps or ge < gs:
        return 0.0
    if pe == ps or ge == gs:
        return float((ps, pe) == (gs, ge))
    inter = max(0.0, min(pe, ge) - max(ps, gs))
    return inter / ((pe - ps) + (ge - gs) - inter)


def multi_segment_iou(
    pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], duration: float | None = None
) -> float:
    """|∪pred ∩ ∪gt| / |∪pred ∪ ∪gt|: IoU of the unions of the segments (overlaps count once).

    Reversed or zero-length predicted segments add nothing. 0.0 if the union is empty.
    """
    p = _union([_clip(s, duration) for s in pred])
    g = _union([_clip(s, duration) for s in gt])
    inter = sum(max(0.0, min(pe, ge) - max(ps, gs)) for ps, pe in p for gs, ge in g)
    union = sum(e - s for s, e in p) + sum(e - s for s, e in g) - inter
    return inter / union if union > 0 else 0.0


def score_temporal(text: str, solution: Any, duration: float | None = None) -> float | None:
    """tIoU of the answered interval; multi-segment IoU when the solution is a list of intervals."""
    gt = _ground_truth_segments(solution, duration)
    if gt is None:
        return None
    answer = extract_answer(text)
    pred = parse_intervals(answer) if answer is not None else None
    if pred is None:
        return 0.0
    if len(gt) == 1 and len(pred) == 1:
        return temporal_iou(pred[0], gt[0], duration)
    return multi_segment_iou(pred, gt, duration)


def mean_track_iou(pred: Sequence[Sequence[float] | None], gt: Sequence[Sequence[float] | None]) -> float:
    """Mean box IoU over the frames where the target is annotated (a missing prediction scores 0).

    A frame where the ground truth is None (target absent) is skipped; predictions beyond the
    annotated frames are ignored. 0.0 if no frame is annotated.
    """
    frames = [(p, g) for p, g in zip(list(pred) + [None] * max(0, len(gt) - len(pred)), gt) if g is not None]
    if not frames:
        return 0.0
    return sum(box_iou(p, g) if p is not None else 0.0 for p, g in frames) / len(frames)


def parse_track(text: str) -> list[list[float] | None] | None:
    """A JSON list with one entry per frame: a box `[x1, y1, x2, y2]` or null; else None."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list) or not value or len(value) > 10_000:
        return None
    track: list[list[float] | None] = []
    for box in value:
        if box is None:
            track.append(None)
        elif (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
            and all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in box)
        ):
            track.append([float(v) for v in box])
        else:
            return None
    return track


def score_track(
    text: str, solution: Any, image_size: Size, input_size: Size | None = None, convention: str = "pixels"
) -> float | None:
    """`mean_track_iou` of the answered per-frame boxes (in `convention`) with `solution` (pixels, null = absent)."""
    if not isinstance(solution, list) or not solution:
        return None
    gt = []
    for box in solution:
        if box is not None and (not isinstance(box, (list, tuple)) or len(box) != 4):
            return None
        gt.append(None if box is None else clip_box([float(v) for v in box], image_size))
    answer = extract_answer(text)
    track = parse_track(answer) if answer is not None else None
    if track is None:
        return 0.0
    pred = [None if b is None else clip_box(to_original(b, convention, image_size, input_size), image_size) for b in track]
    return mean_track_iou(pred, gt)


@register_reward("temporal_iou", description="tIoU (seconds) of the answered interval(s); union IoU for several")
def temporal_iou_reward(
    completions: list[Any], solution: list[Any], duration: list[float | None] | None = None, **_: Any
) -> list[float | None]:
    """Columns: `solution` (`[start, end]` in seconds, or a list of them), optional `duration` (seconds)."""
    duration = duration or [None] * len(completions)
    return [
        score_temporal(completion_text(c), s, d) for c, s, d in zip(completions, solution, duration, strict=True)
    ]


@register_reward("track_iou", description="mean box IoU over annotated frames of the answered per-frame boxes")
def track_iou_reward(
    completions: list[Any],
    solution: list[Any],
    image_size: list[Size],
    input_size: list[Size | None] | None = None,
    coord_convention: list[str | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """Columns: `solution` (a pixel box or null per frame), `image_size`, `input_size`, `coord_convention`."""
    return score_image_columns(score_track, completions, solution, image_size, input_size, coord_convention)


def _ground_truth_segments(solution: Any, duration: float | None) -> list[Interval] | None:
    if isinstance(solution, str):
        return parse_intervals(solution)
    if not isinstance(solution, (list, tuple)) or not solution:
        return None
    items = [solution] if all(_is_number(v) for v in solution) else list(solution)
    out = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not all(_is_number(v) for v in item):
            return None
        start, end = float(item[0]), float(item[1])
        if not _finite(start, end) or end < start:
            return None
        out.append((start, end))
    return out


def _clip(interval: Sequence[float], duration: float | None) -> Interval:
    start, end = float(interval[0]), float(interval[1])
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return start, end
    return min(max(start, 0.0), duration), min(max(end, 0.0), duration)


def _union(segments: list[Interval]) -> list[Interval]:
    merged: list[list[float]] = []
    for s, e in sorted(seg for seg in segments if seg[1] > seg[0]):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
