"""Multi-box detection: parse a list of boxes, match them one-to-one, Visual-RFT's rewards.

Matching is COCO's greedy rule, not Hungarian: predictions in order of decreasing confidence
each take the still-unmatched ground-truth box of the same label with the highest IoU, if that
IoU is at least the threshold (0.5). It is the rule AP is computed with (`mmrft.eval.coco`), so
the reward and the metric agree, and it needs no solver.

The answer block holds a JSON (or Python-literal) list whose items are either 4 numbers or an
object with a box under `bbox_2d` / `bbox` / `box` / `Position`, an optional confidence under
`confidence` / `Confidence` / `score` and an optional `label`. Boxes are in the model's
convention and converted to original pixels; ground truth is a list of xyxy pixel boxes or
of `{"bbox": [...], "label": ...}` objects. Labels take part in matching only where both the
prediction and the ground truth carry one.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mmrft.rewards.coords import Size, box_iou, clip_box, to_original
from mmrft.rewards.grounding import score_image_columns
from mmrft.rewards.parsing import MAX_COORDINATE, extract_answer, normalize_label
from mmrft.rewards.registry import register_reward

MATCH_IOU = 0.5
MAX_BOXES = 100
"""An answer with more boxes than this is rejected (also COCO's maxDets)."""

_BOX_KEYS = ("bbox_2d", "bbox", "box", "Position", "position")
_CONFIDENCE_KEYS = ("confidence", "Confidence", "score")
_LABEL_KEYS = ("label", "Label", "category", "name")


@dataclass(frozen=True)
class Detection:
    """One box in original pixels (xyxy), a confidence in [0, 1] (1.0 if none was given) and an optional label."""

    box: tuple[float, float, float, float]
    confidence: float = 1.0
    label: str | None = None


def parse_detections(text: str) -> list[Detection] | None:
    """The list of detections in `text` (model convention, unconverted); None if malformed.

    Rejects non-finite or huge numbers, confidences outside [0, 1] and more than `MAX_BOXES` items.
    """
    value = _literal(text.strip())
    if not isinstance(value, list) or len(value) > MAX_BOXES:
        return None
    if len(value) == 4 and all(_is_number(v) for v in value):
        value = [value]  # a single bare box
    detections = []
    for item in value:
        detection = _detection(item)
        if detection is None:
            return None
        detections.append(detection)
    return detections


def match_detections(
    predictions: Sequence[Detection], ground_truth: Sequence[Detection], threshold: float = MATCH_IOU
) -> list[tuple[int, int, float]]:
    """One-to-one greedy matches `(prediction index, ground-truth index, IoU)` with IoU >= `threshold`."""
    order = sorted(range(len(predictions)), key=lambda i: -predictions[i].confidence)  # stable: ties keep order
    taken: set[int] = set()
    matches = []
    for i in order:
        best, best_iou = -1, threshold
        for j, gt in enumerate(ground_truth):
            if j in taken or not _same_label(predictions[i], gt):
                continue
            iou = box_iou(predictions[i].box, gt.box)
            if iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            taken.add(best)
            matches.append((i, best, best_iou))
    return matches


def detection_scores(predictions: Sequence[Detection], ground_truth: Sequence[Detection]) -> dict[str, float]:
    """Visual-RFT's detection rewards plus precision and recall, all in [0, 1].

    - `iou`: sum of matched IoUs / max(#predictions, #ground truth): every missed or extra box
      counts as IoU 0, so neither spraying boxes nor omitting them pays.
    - `confidence`: mean over predictions of c if matched, else 1 - c (Visual-RFT's confidence reward).
    Both are 1.0 when there is nothing to detect and nothing was predicted.
    """
    if not predictions and not ground_truth:
        return {"iou": 1.0, "confidence": 1.0, "precision": 1.0, "recall": 1.0}
    matches = match_detections(predictions, ground_truth)
    matched = {i for i, _, _ in matches}
    confidence = [p.confidence if i in matched else 1.0 - p.confidence for i, p in enumerate(predictions)]
    return {
        "iou": sum(iou for _, _, iou in matches) / max(len(predictions), len(ground_truth)),
        "confidence": sum(confidence) / len(confidence) if confidence else 0.0,
        "precision": len(matches) / len(predictions) if predictions else 0.0,
        "recall": len(matches) / len(ground_truth) if ground_truth else 0.0,
    }


def ground_truth_detections(solution: Any, image_size: Size) -> list[Detection] | None:
    """Ground truth as clipped pixel detections; None if malformed (then the reward does not apply)."""
    if isinstance(solution, str):
        solution = _literal(solution)
    if not isinstance(solution, list):
        return None
    if len(solution) == 4 and all(_is_number(v) for v in solution):
        solution = [solution]
    out = []
    for item in solution:
        detection = _detection(item)
        if detection is None:
            return None
        x1, y1, x2, y2 = clip_box(detection.box, image_size)
        if not (x2 > x1 and y2 > y1):
            return None
        out.append(Detection((x1, y1, x2, y2), 1.0, detection.label))
    return out


def score_detection(
    text: str, solution: Any, image_size: Size, input_size: Size | None = None, convention: str = "pixels"
) -> dict[str, float] | None:
    """`detection_scores` of the last answer block against `solution`; all 0.0 if the answer is malformed."""
    gt = ground_truth_detections(solution, image_size)
    if gt is None:
        return None
    answer = extract_answer(text)
    predictions = parse_detections(answer) if answer is not None else None
    if predictions is None:
        return {"iou": 0.0, "confidence": 0.0, "precision": 0.0, "recall": 0.0}
    converted = [
        Detection(tuple(clip_box(to_original(p.box, convention, image_size, input_size), image_size)), p.confidence, p.label)
        for p in predictions
    ]
    return detection_scores(converted, gt)


def detection_components(
    completions: list[Any],
    solution: list[Any],
    image_size: list[Size],
    input_size: list[Size | None] | None = None,
    coord_convention: list[str | None] | None = None,
    **_: Any,
) -> dict[str, list[float | None]]:
    """Per-completion `iou`, `confidence`, `precision`, `recall` (None where the ground truth is malformed)."""
    rows = score_image_columns(score_detection, completions, solution, image_size, input_size, coord_convention)
    keys = ("iou", "confidence", "precision", "recall")
    return {key: [None if row is None else row[key] for row in rows] for key in keys}


@register_reward(
    "detection_iou",
    description="Visual-RFT IoU reward: matched IoU (>=0.5, one-to-one) summed / max(#pred, #gt)",
    components=detection_components,
)
def detection_iou_reward(completions: list[Any], **columns: Any) -> list[float | None]:
    """Columns as `box_iou`, with `solution` a list of boxes (or `{"bbox", "label"}` objects)."""
    return detection_components(completions, **columns)["iou"]


@register_reward(
    "detection_confidence",
    description="Visual-RFT confidence reward: mean of c for matched boxes and 1-c for unmatched ones",
    components=detection_components,
)
def detection_confidence_reward(completions: list[Any], **columns: Any) -> list[float | None]:
    """Columns as `detection_iou`; a box without a confidence counts as confidence 1."""
    return detection_components(completions, **columns)["confidence"]


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except Exception:  # noqa: BLE001 -- literal_eval raises many types on hostile input
        return None


def _detection(item: Any) -> Detection | None:
    confidence, label = 1.0, None
    if isinstance(item, dict):
        box = next((item[k] for k in _BOX_KEYS if k in item), None)
        raw_confidence = next((item[k] for k in _CONFIDENCE_KEYS if k in item), 1.0)
        raw_label = next((item[k] for k in _LABEL_KEYS if k in item), None)
        if not _is_number(raw_confidence) or not 0.0 <= raw_confidence <= 1.0:
            return None
        confidence = float(raw_confidence)
        if raw_label is not None:
            if not isinstance(raw_label, str):
                return None
            label = normalize_label(raw_label)
    else:
        box = item
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box):
        return None
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in box):
        return None
    return Detection(tuple(float(v) for v in box), confidence, label)


def _same_label(prediction: Detection, gt: Detection) -> bool:
    return prediction.label is None or gt.label is None or prediction.label == gt.label


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
