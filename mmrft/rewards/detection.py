"""Multi-box detection: parse a list of boxes, match them one-to-one, Visual-RFT's rewards, COCO AP.

Matching is COCO's greedy rule, not Hungarian: predictions in order of decreasing confidence
each take the still-unmatched ground-truth box of the same label with the highest IoU, if that
IoU is at least the threshold (0.5). It is the rule AP is computed with, so the reward and the
metric agree, and it needs no solver.

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

import numpy as np

from mmrft.rewards.coords import Size, box_iou, clip_box, to_original
from mmrft.rewards.grounding import score_image_columns
from mmrft.rewards.parsing import MAX_COORDINATE, extract_answer, normalize_label
from mmrft.rewards.registry import register_reward

MATCH_IOU = 0.5
MAX_BOXES = 100
"""An answer with more boxes than this is rejected (also COCO's maxDets)."""
COCO_IOUS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
"""COCOeval's area ranges in square pixels, bounds inclusive (an area of exactly 32² is small and medium)."""

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


def coco_map(
    detections: Sequence[Sequence[Detection]],
    ground_truth: Sequence[Sequence[Detection]],
    crowd: Sequence[Sequence[bool]] | None = None,
    max_dets: int = MAX_BOXES,
    area: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, float]:
    """COCO box AP and AR over images (`detections[i]` and `ground_truth[i]` belong to image i).

    Reproduces pycocotools' COCOeval (bbox) and the 12 numbers of its ``summarize()``: per label
    and area range, each image's top ``max_dets`` detections are matched greedily at IoU
    thresholds 0.50:0.05:0.95; precision is made monotone and sampled at 101 recall points, then
    averaged over thresholds and labels that have (non-crowd) ground truth; recall is the final
    recall, averaged alike. ``crowd[i][j]`` marks ground-truth box j of image i as a crowd
    region: its IoU is intersection over the detection's area, it may absorb several
    detections, and detections matched to it count neither as true nor as false positives.
    ``area[i][j]`` is the area that puts that box in one of `AREA_RANGES`: COCO's annotation
    ``area`` (the segment's); where ``area`` or ``area[i]`` is None, the boxes' own. Ground truth
    outside a range is ignored in it like a crowd region, and so is an unmatched detection whose
    box is.

    Returns `mAP`, `AP50`, `AP75`, `AP_small`, `AP_medium`, `AP_large` and `AR_small`,
    `AR_medium`, `AR_large` at ``max_dets``, and `AR@k` for k in 1, 10 (those below
    ``max_dets``) and ``max_dets``; NaN where no label has ground truth in the range
    (pycocotools' -1). Labels None count as one class.
    """
    crowd = crowd if crowd is not None else [[False] * len(g) for g in ground_truth]
    area = area if area is not None else [None] * len(ground_truth)
    cutoffs = [k for k in (1, 10) if k < max_dets] + [max_dets]
    labels = sorted({g.label or "" for image in ground_truth for g in image})
    # COCOeval's eval["precision"] (at max_dets) and eval["recall"]: -1 where a label has no ground truth in the range
    precision = np.full((len(AREA_RANGES), len(labels), len(COCO_IOUS), len(RECALL_POINTS)), -1.0)
    recall = np.full((len(AREA_RANGES), len(labels), len(cutoffs), len(COCO_IOUS)), -1.0)
    for k, label in enumerate(labels):
        images = []
        for dets, gts, flags, sizes in zip(detections, ground_truth, crowd, area, strict=True):
            sizes = sizes if sizes is not None else [_box_area(g.box) for g in gts]
            keep = [j for j, g in enumerate(gts) if (g.label or "") == label]
            dets = sorted((d for d in dets if (d.label or "") == label), key=lambda d: -d.confidence)[:max_dets]
            images.append(_evaluate_image(dets, [gts[j] for j in keep], [bool(flags[j]) for j in keep], [sizes[j] for j in keep]))
        for a in range(len(AREA_RANGES)):
            in_range = [image[a] for image in images]
            n_gt = sum(n for *_, n in in_range)
            if n_gt == 0:
                continue
            for m, cutoff in enumerate(cutoffs):
                top = [(s[:cutoff], tp[:, :cutoff], ig[:, :cutoff]) for s, tp, ig, _ in in_range]  # each image's top `cutoff`
                scores, tp, ig = (np.concatenate(parts, axis=-1) for parts in zip(*top))
                at_cutoff, recall[a, k, m] = _accumulate(scores, tp, ig, n_gt)
            precision[a, k] = at_cutoff  # the last cutoff, max_dets
    splits = list(AREA_RANGES)[1:]
    return {
        "mAP": _mean_valid(precision[0]),
        "AP50": _mean_valid(precision[0, :, 0]),
        "AP75": _mean_valid(precision[0, :, 5]),
        **{f"AP_{name}": _mean_valid(precision[a]) for a, name in enumerate(splits, 1)},
        **{f"AR@{cutoff}": _mean_valid(recall[0, :, m]) for m, cutoff in enumerate(cutoffs)},
        **{f"AR_{name}": _mean_valid(recall[a, :, -1]) for a, name in enumerate(splits, 1)},
    }


def _evaluate_image(
    dets: Sequence[Detection], gts: Sequence[Detection], crowd: Sequence[bool], area: Sequence[float]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """COCOeval.evaluateImg for one image and label (``dets`` score-sorted), at each of `AREA_RANGES`.

    Returns per range (scores[d], matched[t, d], ignored[t, d], #ground truth that counts).
    """
    ious = np.array(
        [[_crowd_iou(d.box, g.box) if c else box_iou(d.box, g.box) for g, c in zip(gts, crowd)] for d in dets]
    ).reshape(len(dets), len(gts))
    scores = np.array([d.confidence for d in dets], dtype=float)
    det_area = np.array([_box_area(d.box) for d in dets], dtype=float)
    crowd, area = np.array(crowd, dtype=bool), np.array(area, dtype=float)
    out = []
    for low, high in AREA_RANGES.values():
        ignore = crowd | (area < low) | (area > high)
        order = np.argsort(ignore, kind="stable")  # COCOeval puts ignored ground truth last
        tp, ig = _coco_match(ious[:, order], crowd[order], ignore[order])
        ig |= ~tp & ((det_area < low) | (det_area > high))
        out.append((scores, tp, ig, int((~ignore).sum())))
    return out


def _accumulate(scores: np.ndarray, tp: np.ndarray, ig: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate for one label and area range: precision[t, recall point] and final recall[t]."""
    order = np.argsort(-scores, kind="mergesort")
    tp_sum = np.cumsum(tp[:, order] & ~ig[:, order], axis=1, dtype=float)
    fp_sum = np.cumsum(~tp[:, order] & ~ig[:, order], axis=1, dtype=float)
    precision = np.zeros((len(COCO_IOUS), len(RECALL_POINTS)))
    recall = tp_sum[:, -1] / n_gt if scores.size else np.zeros(len(COCO_IOUS))
    for t in range(len(COCO_IOUS)):
        rc = tp_sum[t] / n_gt
        pr = tp_sum[t] / (tp_sum[t] + fp_sum[t] + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1] if pr.size else pr
        index = np.searchsorted(rc, RECALL_POINTS, side="left")
        valid = index < pr.size
        precision[t, valid] = pr[index[valid]]
    return precision, recall


def _box_area(box: Sequence[float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _crowd_iou(det: Sequence[float], region: Sequence[float]) -> float:
    """COCO's IoU with a crowd region: intersection over the detection's own area."""
    w = max(0.0, min(det[2], region[2]) - max(det[0], region[0]))
    h = max(0.0, min(det[3], region[3]) - max(det[1], region[1]))
    area = _box_area(det)
    return w * h / area if area > 0 else 0.0


def _coco_match(ious: np.ndarray, crowd: np.ndarray, ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching of score-sorted detections to ground truth (ignored ground truth last).

    Returns (matched[t, d], ignored[t, d]): a detection matched to ignored ground truth (a crowd
    region, or a box outside the area range) is ignored. Only a crowd region can take several
    detections. Ties go to the last ground truth, as in COCOeval.
    """
    n_det, n_gt = ious.shape
    tp = np.zeros((len(COCO_IOUS), n_det), dtype=bool)
    ig = np.zeros((len(COCO_IOUS), n_det), dtype=bool)
    for t, threshold in enumerate(COCO_IOUS):
        gt_taken = np.zeros(n_gt, dtype=bool)
        for d in range(n_det):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(n_gt):
                if gt_taken[g] and not crowd[g]:
                    continue
                if best > -1 and not ignore[best] and ignore[g]:
                    break  # matched counted ground truth: ignored ground truth (sorted last) cannot take it
                if ious[d, g] < best_iou:
                    continue
                best, best_iou = g, ious[d, g]
            if best >= 0:
                gt_taken[best] = True
                tp[t, d] = True
                ig[t, d] = ignore[best]
    return tp, ig


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else math.nan


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
