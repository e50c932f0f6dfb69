"""COCO box AP and AR as pycocotools' COCOeval computes them (bbox), over mmrft's `Detection`s.

A reimplementation, not a wrapper, so that evaluation needs no compiled extension; it is tested
against COCOeval's `stats` and its accumulated precision and recall (tests/rewards/test_detection.py).
Matching is the same greedy rule as the detection rewards' (`mmrft.rewards.detection`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mmrft.rewards.coords import box_iou
from mmrft.rewards.detection import MAX_BOXES, Detection

COCO_IOUS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
"""COCOeval's area ranges in square pixels, bounds inclusive (an area of exactly 32² is small and medium)."""


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
