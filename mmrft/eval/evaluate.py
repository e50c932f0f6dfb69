"""Greedy evaluation of a policy on a JSONL split, scored with the reward parsers.

What is rewarded in training is what is scored here: grounding uses the ``box_iou`` parser in
the model's declared box convention, classification and counting the same answer parsers as
their rewards. Nothing is dropped: a broken sample or an unparseable answer scores 0, is
counted in the denominator, and is reported by reason under ``failures``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from mmrft.data.errors import SampleError
from mmrft.data.validate import check_sample
from mmrft.eval.coco import coco_map
from mmrft.registry import Registry
from mmrft.rewards.answers import score_choice, score_count, score_label
from mmrft.rewards.coords import box_iou, to_original
from mmrft.rewards.detection import Detection, ground_truth_detections, parse_detections, score_detection
from mmrft.rewards.grounding import ground_truth_box, score_point
from mmrft.rewards.math_answer import score_mathvista
from mmrft.rewards.parsing import extract_answer, parse_box
from mmrft.rewards.trajectory import ade, fde, score_trajectory, waypoints_from
from mmrft.rewards.temporal import parse_intervals, parse_track, score_temporal, score_track, temporal_iou
from mmrft.rewards.vqa import score_vqa

TASK_SCORERS = Registry("task scorer")
DATASET_METRICS = Registry("dataset metric")
"""Per task, metrics over the whole split that are not means of per-sample scores (COCO mAP)."""
ROW_FIELDS = (
    "index", "id", "task", "prediction", "parsed", "parsed_pixels", "score", "failure", "error", "image_size", "input_size",
    "convention", "group", "circular",
)
"""Fields of a samples.jsonl row that are not metrics."""


@dataclass
class ScoredPrediction:
    """What a task scorer makes of one prediction: its parsed answer, its score fields and its
    failure reason (None if parsed)."""

    parsed: object
    scores: dict[str, float]
    failure: str | None = None
    parsed_pixels: object = None
    """Boxes of `parsed` (in the model's convention) converted to original-image pixels, as the
    benchmark scores them (not clipped to the image); None for answers without boxes."""


@TASK_SCORERS.register("grounding")
def _score_grounding(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    """RefCOCO's Acc@0.5 and mean IoU: the answered box converted to original pixels and, unlike
    the training reward, not clipped to the image (the benchmark's IoU takes the box as given)."""
    answer = extract_answer(text)
    box = parse_box(answer) if answer is not None else None
    pixels = None if box is None else to_original(box, meta["convention"], meta["image_size"], meta["input_size"])
    gt = ground_truth_box(sample["solution"], meta["image_size"])
    iou = box_iou(pixels, gt) if pixels is not None and gt is not None else 0.0
    failure = "no_answer_block" if answer is None else ("unparseable_box" if box is None else None)
    return ScoredPrediction(box, {"acc@0.5": float(iou >= 0.5), "mean_iou": iou}, failure, pixels)


def _answer_scorer(score_fn):
    def scorer(text: str, sample: dict, meta: dict) -> ScoredPrediction:
        answer = extract_answer(text)
        score = score_fn(text, sample["solution"]) or 0.0
        return ScoredPrediction(answer, {"accuracy": score}, "no_answer_block" if answer is None else None)

    return scorer


TASK_SCORERS.register("classification")(_answer_scorer(score_label))
TASK_SCORERS.register("counting")(_answer_scorer(score_count))


@TASK_SCORERS.register("gui_grounding")
def _score_gui(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    """Point-in-box accuracy (ScreenSpot): the answered point, or a box's centre, inside the target, edges included."""
    answer = extract_answer(text)
    hit = score_point(text, sample["solution"], meta["image_size"], meta["input_size"], meta["convention"]) or 0.0
    return ScoredPrediction(answer, {"accuracy": hit}, "no_answer_block" if answer is None else None)


TASK_SCORERS.register("vqa")(_answer_scorer(score_vqa))


@TASK_SCORERS.register("detection")
def _score_detection(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    """Per image: matched-box IoU, precision and recall (Visual-RFT's terms); mAP comes per split."""
    answer = extract_answer(text)
    predictions = parse_detections(answer) if answer is not None else None
    scores = score_detection(text, sample["solution"], meta["image_size"], meta["input_size"], meta["convention"])
    scores = {k: scores[k] for k in ("iou", "precision", "recall")} if scores else {"iou": 0.0, "precision": 0.0, "recall": 0.0}
    parsed = None if predictions is None else [{"bbox_2d": list(p.box), "score": p.confidence, "label": p.label} for p in predictions]
    failure = "no_answer_block" if answer is None else ("unparseable_detections" if predictions is None else None)
    size, convention = meta["image_size"], meta["convention"]
    pixels = None if parsed is None else [
        {**item, "bbox_2d": to_original(item["bbox_2d"], convention, size, meta["input_size"])} for item in parsed
    ]  # fmt: skip
    return ScoredPrediction(parsed, scores, failure, pixels)


@DATASET_METRICS.register("detection")
def _coco_metrics(rows: list[dict], samples: list[dict]) -> dict[str, float]:
    """COCOeval's AP and AR over the split (`coco_map`), predictions converted from the model's
    convention and, as COCOeval takes results, not clipped to the image.

    ``meta.crowd`` and ``meta.area`` (COCO's annotation area; the boxes' own where absent) travel with each sample.
    """
    predictions, truth, crowd, area = [], [], [], []
    for row, sample in zip(rows, samples, strict=True):
        size = tuple(sample.get("image_size") or row.get("image_size") or (1, 1))
        meta = sample.get("meta") or {}
        gt = ground_truth_detections(sample["solution"], size)
        if gt is None:  # dropping it would silently undercount the split's objects
            raise ValueError(f"sample {sample.get('id')!r}: malformed or empty-after-clipping ground-truth box in {sample['solution']!r}")
        truth.append(gt)
        crowd.append(list(meta.get("crowd") or [False] * len(truth[-1])))
        area.append(meta.get("area"))
        dets = []
        for item in row.get("parsed") or []:
            box = to_original(item["bbox_2d"], row["convention"], size, tuple(row["input_size"]))
            dets.append(Detection(tuple(box), item["score"], item["label"]))  # as given, as COCOeval takes results
        predictions.append(dets)
    return coco_map(predictions, truth, crowd, area=area)


@TASK_SCORERS.register("mathvista")
def _score_mathvista(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    answer = extract_answer(text)
    score = score_mathvista(text, sample["solution"], sample.get("choices"), sample.get("answer_type", "text"), sample.get("precision"))
    return ScoredPrediction(answer, {"accuracy": score}, "no_answer_block" if answer is None else None)


@TASK_SCORERS.register("multiple_choice")
@TASK_SCORERS.register("video_qa")
def _score_choice(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    answer = extract_answer(text)
    score = score_choice(text, sample["solution"], sample.get("options")) or 0.0
    return ScoredPrediction(answer, {"accuracy": score}, "no_answer_block" if answer is None else None)


@TASK_SCORERS.register("temporal_grounding")
def _score_temporal(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    """R1@{0.3, 0.5, 0.7} (the top-1 moment's tIoU reaches the threshold) and mean tIoU, in seconds;
    the answered moment is taken as given, not clipped to the duration (as the benchmarks' tIoU)."""
    answer = extract_answer(text)
    segments = parse_intervals(answer) if answer is not None else None
    iou = score_temporal(text, sample["solution"]) or 0.0
    failure = "no_answer_block" if answer is None else ("unparseable_interval" if segments is None else None)
    scores = {f"r1@{t}": float(iou >= t) for t in (0.3, 0.5, 0.7)}
    return ScoredPrediction(segments, {**scores, "miou": iou, **_target_hit(segments, sample)}, failure)


def _target_hit(segments: list | None, sample: dict) -> dict[str, float]:
    """On a synthetic clip, which lists every shape's window (meta.shapes): `target_hit` is 1 when
    the answer overlaps the asked shape's window, and at least as well as any distractor's: it
    found the queried shape, not another one (chance with k shapes and no hedging: 1/k)."""
    windows = [(s["on_s"], s["off_s"]) for s in (sample.get("meta") or {}).get("shapes", [])]
    if tuple(sample["solution"]) not in windows:  # not a synthetic clip, or not its windows
        return {}
    overlaps = {w: temporal_iou(segments[0], w) for w in windows} if segments else {}
    mine = overlaps.get(tuple(sample["solution"]), 0.0)
    return {"target_hit": float(mine > 0 and mine >= max(overlaps.values()))}


@TASK_SCORERS.register("tracking")
def _score_tracking(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    """Mean box IoU over the asked frames, boxes in the model's convention."""
    answer = extract_answer(text)
    track = parse_track(answer) if answer is not None else None
    size = sample.get("image_size") or meta["image_size"]
    iou = score_track(text, sample["solution"], size, meta["input_size"], meta["convention"]) or 0.0
    failure = "no_answer_block" if answer is None else ("unparseable_track" if track is None else None)
    return ScoredPrediction(track, {"mean_iou": iou}, failure)


@TASK_SCORERS.register("driving_plan")
def _score_plan(text: str, sample: dict, meta: dict) -> ScoredPrediction:
    """The `trajectory` verifier's terms: reward, collision, off-road, progress; `valid` is 0 (and
    every term 0) for a missing, unparseable or wrong-length waypoint list. ADE/FDE come per split.
    The waypoints are read as the verifier reads them: the answer block, else the whole text."""
    waypoints = waypoints_from(text)
    columns = {key: sample.get(key) for key in ("obstacles", "road", "ego_size", "reference", "goal")}
    scores = score_trajectory(waypoints, sample["solution"], **columns) if waypoints is not None else None
    if not scores or "ade" not in scores:
        if waypoints is not None:
            failure = "wrong_waypoint_count"
        else:
            failure = "no_answer_block" if extract_answer(text) is None else "unparseable_waypoints"
        return ScoredPrediction(None, {"reward": 0.0, "collision": 0.0, "offroad": 0.0, "progress": 0.0, "valid": 0.0}, failure)
    return ScoredPrediction(waypoints.tolist(), {**{k: float(scores[k]) for k in ("reward", "collision", "offroad", "progress")}, "valid": 1.0})


@DATASET_METRICS.register("driving_plan")
def _plan_errors(rows: list[dict], samples: list[dict]) -> dict[str, float]:
    """ADE and FDE (metres) to the expert's waypoints over the valid answers only; absent if none
    is valid (a mean over nothing; JSON has no NaN)."""
    pairs = [(np.asarray(r["parsed"]), np.asarray(s["solution"], dtype=float)) for r, s in zip(rows, samples, strict=True) if r.get("valid")]
    if not pairs:
        return {}
    return {"ade": float(np.mean([ade(p, g) for p, g in pairs])), "fde": float(np.mean([fde(p, g) for p, g in pairs]))}


def _broken_row(index: int, sample: dict | None, error: Exception) -> dict:
    """The row of a sample that could not be decoded (missing media, malformed row): it scores 0
    on each metric of its task, so a split whose every video is missing still reports its metrics."""
    reason = error.reason if isinstance(error, SampleError) else f"unknown task {error}"
    row = {"index": index, "id": getattr(error, "sample_id", f"#{index}"), "task": None, "prediction": None,
           "parsed": None, "score": 0.0, "failure": "bad_sample", "error": reason}  # fmt: skip
    if isinstance(sample, dict) and sample.get("task") in TASK_SCORERS.names():
        return {**row, **dict.fromkeys(_metric_names(sample), 0.0)}
    return row


def _metric_names(sample: dict) -> list[str]:
    """The per-sample metrics of the sample's task: what its scorer returns for an empty answer."""
    meta = {"image_size": (1, 1), "input_size": (1, 1), "convention": "pixels"}
    try:
        return list(TASK_SCORERS.get(sample["task"])("", sample, meta).scores)
    except Exception:  # noqa: BLE001 -- a sample too broken to score has no metrics to add
        return []


@dataclass
class EvalResult:
    n: int
    metrics: dict[str, float]
    failures: dict[str, int]
    samples: list[dict] = field(default_factory=list)

    def as_json(self, benchmark: str, model: str) -> dict:
        return {"benchmark": benchmark, "model": model, "n": self.n, "metrics": self.metrics, "failures": self.failures}


@torch.no_grad()
def evaluate(
    policy,
    dataset,
    limit: int | None = None,
    batch_size: int = 32,
    max_new_tokens: int = 32,
    done: dict[int, dict] | None = None,
    on_rows=None,
    progress: bool = False,
    sampler=None,
) -> EvalResult:
    """Greedy-decode the first ``limit`` samples of ``dataset`` and score them by task.

    ``done`` maps sample index -> a row from an interrupted run: those samples are not decoded
    again. ``on_rows(rows)`` receives each batch's new rows as soon as they are scored (to
    append them to samples.jsonl). Metrics are means over all ``n`` rows; a row without a metric
    (a broken sample) counts as 0. ``sampler`` (a :class:`mmrft.policies.vllm_engine.VLLMSampler`)
    decodes instead of the policy's own sampler.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    done = dict(done or {})
    todo = [i for i in range(n) if i not in done]
    bar = tqdm(total=n, initial=n - len(todo), disable=not progress, desc="eval", unit="sample", dynamic_ncols=True)
    for start in range(0, len(todo), batch_size):
        good, new = [], []
        for i in todo[start : start + batch_size]:
            sample = None
            try:
                sample = dataset[i]
                check_sample(sample)
                TASK_SCORERS.get(sample["task"])
                good.append((i, sample))
            except (SampleError, KeyError) as err:
                new.append(_broken_row(i, sample, err))
        if good:
            batch = policy.prompts([sample for _, sample in good])
            if sampler is None:
                rollout = policy.sample(batch, num_samples=1, max_new_tokens=max_new_tokens, temperature=0.0)
            else:
                rollout = sampler.sample([sample for _, sample in good], 1, max_new_tokens, temperature=0.0)
            for k, ((i, sample), text) in enumerate(zip(good, rollout.texts, strict=True)):
                meta = {"image_size": batch.image_sizes[k], "input_size": batch.input_sizes[k], "convention": policy.coord_convention}
                scored = TASK_SCORERS.get(sample["task"])(text, sample, meta)
                new.append(
                    {
                        "index": i,
                        "id": sample["id"],
                        "task": sample["task"],
                        "prediction": text,
                        "parsed": scored.parsed,
                        **({"parsed_pixels": scored.parsed_pixels} if scored.parsed_pixels is not None else {}),
                        "score": next(iter(scored.scores.values())),
                        **scored.scores,
                        "failure": scored.failure,
                        **meta,  # what the parsed answer means: model-input size and box convention
                        "group": (sample.get("meta") or {}).get("group"),
                        "circular": (sample.get("meta") or {}).get("circular"),
                    }
                )
        new.sort(key=lambda row: row["index"])
        for row in new:
            done[row["index"]] = row
        if on_rows is not None:
            on_rows(new)
        bar.update(len(new))
    bar.close()
    rows = [done[i] for i in range(n)]
    names = sorted({k for row in rows for k in row if k not in ROW_FIELDS})
    metrics = {name: sum(float(row.get(name, 0.0)) for row in rows) / n if n else 0.0 for name in names}
    for group in sorted({row.get("group") for row in rows} - {None}):  # e.g. ScreenSpot's text / icon
        members = [row for row in rows if row.get("group") == group]
        metrics.update({f"{name}/{group}": sum(float(r.get(name, 0.0)) for r in members) / len(members) for name in names})
    questions: dict = {}
    for row in rows:  # CircularEval: a question counts only if every rotation of its options is right
        if row.get("circular") is not None:
            questions.setdefault(row["circular"], []).append(row)
    if questions:
        metrics.update({f"{name}/circular": sum(min(float(r.get(name, 0.0)) for r in q) for q in questions.values()) / len(questions) for name in names})
    by_task: dict[str, list[int]] = {}  # only tasks with split-level metrics re-read their samples
    for i, row in enumerate(rows):
        if row.get("task") in DATASET_METRICS.names():
            by_task.setdefault(row["task"], []).append(i)
    for task, picked in sorted(by_task.items()):
        metrics.update(DATASET_METRICS.get(task)([rows[i] for i in picked], [dataset[i] for i in picked]))
    failures = Counter(row["failure"] for row in rows if row["failure"])
    return EvalResult(n=n, metrics=metrics, failures=dict(failures), samples=rows)
