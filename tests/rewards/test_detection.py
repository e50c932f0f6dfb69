"""Multi-box detection: parsing, one-to-one matching, Visual-RFT rewards, and COCO AP parity with pycocotools."""

import math
from collections import Counter

import numpy as np
import pytest

from mmrft.rewards import get_reward
from mmrft.rewards.coords import box_giou, box_iou
from mmrft.eval.coco import AREA_RANGES, coco_map
from mmrft.rewards.detection import Detection, match_detections, parse_detections


def _one(name, completion, **columns):
    [score] = get_reward(name)([completion], **{k: [v] for k, v in columns.items()})
    return score


IMAGE = [100, 100]
GTS = [[0, 0, 10, 10], [50, 50, 70, 70]]
A = '{"bbox_2d": [0, 0, 10, 10], "confidence": 0.9}'
B = '{"bbox_2d": [50, 50, 70, 70], "confidence": 0.8}'
FAR = '{"bbox_2d": [80, 0, 90, 10], "confidence": 0.3}'
DETECTION_CASES = [
    # case, answer, expected iou reward, expected confidence reward
    ("both found", f"[{A}, {B}]", 1.0, pytest.approx(0.85)),
    ("one missed", f"[{A}]", 0.5, pytest.approx(0.9)),
    ("one extra", f"[{A}, {B}, {FAR}]", pytest.approx(2 / 3), pytest.approx((0.9 + 0.8 + 0.7) / 3)),
    ("duplicate of one box", f"[{A}, {A}]", 0.5, pytest.approx((0.9 + 0.1) / 2)),
    ("plain boxes", "[[0, 0, 10, 10], [50, 50, 70, 70]]", 1.0, 1.0),
    ("python literal", "[{'bbox_2d': [0, 0, 10, 10]}, {'bbox_2d': [50, 50, 70, 70]}]", 1.0, 1.0),
    ("Visual-RFT keys", '[{"Position": [0, 0, 10, 10], "Confidence": 0.5}]', 0.5, 0.5),
    ("below 0.5 IoU", '[{"bbox_2d": [5, 0, 15, 10], "confidence": 0.6}]', 0.0, pytest.approx(0.4)),
    ("empty list", "[]", 0.0, 0.0),
    ("confidence out of range", '[{"bbox_2d": [0, 0, 10, 10], "confidence": 1.5}]', 0.0, 0.0),
    ("nan", '[{"bbox_2d": [NaN, 0, 10, 10]}]', 0.0, 0.0),
    ("malformed", "[[0, 0, 10]]", 0.0, 0.0),
    ("not a list", "boxes: [0, 0, 10, 10]", 0.0, 0.0),
    ("too many boxes", "[" + ", ".join(["[0, 0, 10, 10]"] * 101) + "]", 0.0, 0.0),
]


@pytest.mark.parametrize("case, answer, iou, confidence", DETECTION_CASES, ids=[c[0] for c in DETECTION_CASES])
def test_detection_rewards(case, answer, iou, confidence):
    completion = f"<think>two squares</think><answer>{answer}</answer>"
    assert _one("detection_iou", completion, solution=GTS, image_size=IMAGE) == iou
    assert _one("detection_confidence", completion, solution=GTS, image_size=IMAGE) == confidence


def test_detection_edge_cases():
    assert _one("detection_iou", "<answer>[]</answer>", solution=[], image_size=IMAGE) == 1.0
    assert _one("detection_iou", "no answer", solution=GTS, image_size=IMAGE) == 0.0
    assert _one("detection_iou", "<answer>[]</answer>", solution=[[0, 0, 10]], image_size=IMAGE) is None
    norm = "<answer>[[0, 0, 100, 100]]</answer>"
    assert _one("detection_iou", norm, solution=[[0, 0, 10, 10]], image_size=IMAGE, coord_convention="norm1000") == 1.0


def test_labels_restrict_matching():
    gt = [{"bbox": [0, 0, 10, 10], "label": "cat"}]
    right = '<answer>[{"bbox_2d": [0, 0, 10, 10], "label": "Cat"}]</answer>'
    wrong = '<answer>[{"bbox_2d": [0, 0, 10, 10], "label": "dog"}]</answer>'
    assert _one("detection_iou", right, solution=gt, image_size=IMAGE) == 1.0
    assert _one("detection_iou", wrong, solution=gt, image_size=IMAGE) == 0.0


def test_matching_is_one_to_one_by_confidence():
    gt = [Detection((0, 0, 10, 10))]
    preds = [Detection((0, 0, 10, 9), 0.2), Detection((0, 0, 10, 8), 0.9)]
    assert match_detections(preds, gt) == [(1, 0, pytest.approx(0.8))]  # the confident one takes the box
    assert parse_detections("[0, 0, 1, 1]") == [Detection((0.0, 0.0, 1.0, 1.0))]


def _random_boxes(rng, n, size=100.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_box_iou_matches_pycocotools_and_torchvision():
    mask = pytest.importorskip("pycocotools.mask")
    torch = pytest.importorskip("torch")
    from torchvision.ops import box_iou as tv_iou
    from torchvision.ops import generalized_box_iou as tv_giou

    rng = np.random.default_rng(0)
    a = _random_boxes(rng, 300)
    b = np.concatenate([a[:150] + rng.uniform(-3, 3, (150, 4)), _random_boxes(rng, 150)])
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 0.1)
    edge = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [0, 0, 10, 10], [0, 0, 0, 10], [5, 5, 5.000001, 6]])
    edge_other = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [2, 2, 3, 3], [0, 0, 10, 10], [0, 0, 10, 10]])
    a, b = np.concatenate([a, edge]), np.concatenate([b, edge_other])
    ours = np.array([box_iou(x, y) for x, y in zip(a, b)])
    xywh = lambda boxes: np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])  # noqa: E731
    coco = np.array([mask.iou(xywh(x[None]), xywh(y[None]), [0])[0, 0] for x, y in zip(a, b)])
    np.testing.assert_allclose(ours, coco, rtol=1e-9, atol=1e-12)
    ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    np.testing.assert_allclose(ours, tv_iou(ta, tb).diagonal().numpy(), rtol=1e-9, atol=1e-12)
    valid = (a[:, 2] > a[:, 0]) & (b[:, 2] > b[:, 0])  # torchvision's GIoU needs positive-area boxes
    ours_giou = np.array([box_giou(x, y) for x, y in zip(a[valid], b[valid])])
    theirs = tv_giou(ta[valid], tb[valid]).diagonal().numpy()
    np.testing.assert_allclose(ours_giou, theirs, rtol=1e-9, atol=1e-12)
    assert (ours > 0).sum() > 100 and (ours_giou < 0).sum() > 100  # both regimes exercised


COCO_KEYS = ["mAP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
             "AR@1", "AR@10", "AR@100", "AR_small", "AR_medium", "AR_large"]
"""`coco_map`'s names for the 12 numbers of COCOeval.summarize()'s `stats`, in order."""


def _cocoeval(detections, ground_truth, crowd=None, area=None, max_dets=100):
    """pycocotools' COCOeval on the same data (labels as category ids) under `coco_map`'s names, -1 as NaN.

    At maxDets 100 these are `summarize()`'s `stats`; otherwise the same means of its accumulated
    precision and recall at `max_dets` (summarize() hard-codes maxDets 100 for mAP).
    """
    crowd = crowd or [[False] * len(image) for image in ground_truth]
    area = area or [[(g.box[2] - g.box[0]) * (g.box[3] - g.box[1]) for g in image] for image in ground_truth]
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    labels = sorted({g.label for image in ground_truth for g in image} | {d.label for image in detections for d in image})
    cat = {label: i + 1 for i, label in enumerate(labels)}
    xywh = lambda b: [b[0], b[1], b[2] - b[0], b[3] - b[1]]  # noqa: E731
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i + 1} for i in range(len(ground_truth))],
        "categories": [{"id": cat[g]} for g in sorted({g.label for image in ground_truth for g in image})],
        "annotations": [
            {"id": n + 1, "image_id": i + 1, "category_id": cat[g.label], "bbox": xywh(g.box), "area": a, "iscrowd": int(c)}
            for n, (i, g, c, a) in enumerate(
                (i, g, c, a)
                for i, image in enumerate(ground_truth)
                for g, c, a in zip(image, crowd[i], area[i], strict=True)
            )
        ],
    }
    gt.createIndex()
    results = [{"image_id": i + 1, "category_id": cat[d.label], "bbox": xywh(d.box), "score": d.confidence}
               for i, image in enumerate(detections) for d in image]
    if results:
        dt = gt.loadRes(results)
    else:  # loadRes cannot take an empty list
        dt = COCO()
        dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": []}
        dt.createIndex()
    evaluator = COCOeval(gt, dt, "bbox")
    cutoffs = [k for k in (1, 10) if k < max_dets] + [max_dets]
    evaluator.params.maxDets = cutoffs
    evaluator.evaluate()
    evaluator.accumulate()
    if max_dets == 100:
        evaluator.summarize()
        return {key: math.nan if value == -1 else float(value) for key, value in zip(COCO_KEYS, evaluator.stats, strict=True)}
    precision, recall = evaluator.eval["precision"], evaluator.eval["recall"]  # [T, R, K, A, M], [T, K, A, M]

    def mean(p):
        return float(p[p > -1].mean()) if (p > -1).any() else math.nan

    sizes = {"small": 1, "medium": 2, "large": 3}  # COCOeval's areaRngLbl
    return {
        "mAP": mean(precision[..., 0, -1]),
        "AP50": mean(precision[0, ..., 0, -1]),
        "AP75": mean(precision[5, ..., 0, -1]),
        **{f"AP_{name}": mean(precision[..., a, -1]) for name, a in sizes.items()},
        **{f"AR@{k}": mean(recall[..., 0, m]) for m, k in enumerate(cutoffs)},
        **{f"AR_{name}": mean(recall[..., a, -1]) for name, a in sizes.items()},
    }


def _assert_matches_cocoeval(detections, ground_truth, crowd=None, area=None, max_dets=100):
    ours = coco_map(detections, ground_truth, crowd=crowd, max_dets=max_dets, area=area)
    theirs = _cocoeval(detections, ground_truth, crowd, area, max_dets)
    assert list(ours) == list(theirs)
    assert ours == pytest.approx(theirs, abs=1e-12, nan_ok=True)
    return ours


def _synthetic_set(rng, n_images, labels=("cat", "dog", "car"), size=100.0):
    detections, ground_truth = [], []
    for _ in range(n_images):
        gts = [Detection(tuple(b), 1.0, str(rng.choice(labels))) for b in _random_boxes(rng, rng.integers(0, 5), size)]
        dets = []
        for g in gts:  # noisy copies, some mislabelled, some missing
            if rng.random() < 0.8:  # shift and rescale, keeping the box valid
                x1, y1, x2, y2 = g.box
                cx, cy = (x1 + x2) / 2 + rng.normal(0, 3), (y1 + y2) / 2 + rng.normal(0, 3)
                w, h = (x2 - x1) * rng.uniform(0.7, 1.3), (y2 - y1) * rng.uniform(0.7, 1.3)
                box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                label = g.label if rng.random() < 0.85 else str(rng.choice(labels))
                dets.append(Detection(tuple(box), float(rng.random()), label))
        dets += [Detection(tuple(b), float(rng.random()), str(rng.choice(labels)))
                 for b in _random_boxes(rng, rng.integers(0, 3), size)]
        detections.append(dets)
        ground_truth.append(gts)
    return detections, ground_truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_map_matches_cocoeval(seed, capsys):
    pytest.importorskip("pycocotools")
    detections, ground_truth = _synthetic_set(np.random.default_rng(seed), 12)
    ours = _assert_matches_cocoeval(detections, ground_truth)
    assert 0.05 < ours["mAP"] < 0.95
    assert math.isnan(ours["AP_large"]) and math.isnan(ours["AR_large"])  # boxes of at most 50 x 50: no large ones


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_coco_map_area_splits_match_cocoeval(seed, capsys):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(seed)
    detections, ground_truth = _synthetic_set(rng, 20, size=400.0)  # boxes of 1 to 200 pixels a side
    # a segment covers part of its box: the annotation's area, not the box's, picks the split
    area = [[(g.box[2] - g.box[0]) * (g.box[3] - g.box[1]) * rng.uniform(0.3, 1.0) for g in image] for image in ground_truth]
    ground_truth[0].append(Detection((0.0, 0.0, 32.0, 32.0), 1.0, "cat"))  # exactly 32²: both small and medium
    area[0].append(32.0**2)
    detections[0].append(Detection((0.0, 0.0, 32.0, 32.0), 0.5, "cat"))
    ours = _assert_matches_cocoeval(detections, ground_truth, area=area)
    assert ours != coco_map(detections, ground_truth)  # the areas matter
    counts = Counter(
        name for image in area for a in image for name, (low, high) in AREA_RANGES.items() if low <= a <= high and name != "all"
    )
    assert min(counts.values()) >= 5 and all(0.0 < ours[f"AP_{name}"] < 1.0 for name in counts)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_coco_map_with_crowd_regions_matches_cocoeval(seed, capsys):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(seed)
    detections, ground_truth = _synthetic_set(rng, 12, size=200.0)
    crowd = [[bool(rng.random() < 0.3) for _ in image] for image in ground_truth]
    for i, image in enumerate(ground_truth):  # detections inside crowd regions: ignored, not false positives
        for g, c in zip(image, crowd[i], strict=True):
            if c:
                x1, y1, x2, y2 = g.box
                detections[i].append(Detection((x1, y1, (x1 + x2) / 2, (y1 + y2) / 2), float(rng.random()), g.label))
    assert sum(map(sum, crowd)) >= 2
    ours = _assert_matches_cocoeval(detections, ground_truth, crowd)
    plain = coco_map(detections, ground_truth)
    assert plain["mAP"] != ours["mAP"]  # the crowd flags matter


@pytest.mark.parametrize("max_dets", [1, 10])
def test_coco_map_max_dets_matches_cocoeval(max_dets, capsys):
    pytest.importorskip("pycocotools")
    detections, ground_truth = _synthetic_set(np.random.default_rng(7), 12, size=300.0)
    ours = _assert_matches_cocoeval(detections, ground_truth, max_dets=max_dets)
    assert list(ours)[6:-3] == [f"AR@{k}" for k in (1, 10) if k <= max_dets]


def test_coco_map_empty_results_and_perfect(capsys):
    pytest.importorskip("pycocotools")
    _, ground_truth = _synthetic_set(np.random.default_rng(3), 6)
    empty = [[] for _ in ground_truth]
    nan = dict.fromkeys(["AP_large", "AR_large"], math.nan)  # nothing large in the ground truth
    zeros = {key: 0.0 for key in COCO_KEYS} | nan
    assert _assert_matches_cocoeval(empty, ground_truth) == pytest.approx(zeros, nan_ok=True)
    perfect = _assert_matches_cocoeval(ground_truth, ground_truth)
    assert perfect == pytest.approx({key: 1.0 for key in COCO_KEYS} | nan | {"AR@1": perfect["AR@1"]}, nan_ok=True)
    assert perfect["AR@1"] < 1.0  # some images hold several boxes of one label
    assert all(math.isnan(v) for v in coco_map([[]], [[]]).values())


def test_coco_map_matches_cocoeval_on_boxes_clipped_at_the_image_border():
    """Detections that run past a 100 x 80 image are clipped as `mmrft eval` clips them; ground
    truth touches every edge. Both scorers see the same clipped boxes."""
    pytest.importorskip("pycocotools")
    from mmrft.rewards.coords import clip_box

    size = (100, 80)
    rng = np.random.default_rng(7)
    ground_truth = [[Detection((0.0, 0.0, 30.0, 25.0), 1.0, "cat"), Detection((70.0, 50.0, 100.0, 80.0), 1.0, "dog")]
                    for _ in range(4)]
    detections = []
    for image in ground_truth:
        raw = [(g.box[0] - rng.uniform(0, 15), g.box[1] - rng.uniform(0, 15), g.box[2] + rng.uniform(-5, 15), g.box[3] + rng.uniform(-5, 15))
               for g in image]
        detections.append([Detection(tuple(clip_box(b, size)), float(rng.random()), g.label) for b, g in zip(raw, image)])
    assert any(d.box[0] == 0.0 or d.box[2] == 100.0 for image in detections for d in image)
    ours = _assert_matches_cocoeval(detections, ground_truth)
    assert 0 < ours["mAP"] < 1
