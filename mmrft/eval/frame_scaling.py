"""Test-time frame scaling (after Video-RTS, Wang et al. 2025): start with few frames, add frames
until repeated answers agree.

For each video sample and each frame count of the schedule (e.g. 4, 8, 16), sample ``votes``
answers at temperature ``temperature``; stop at the first count where the answers agree, and
answer with their majority. The report gives accuracy against the mean frames used, next to
greedy accuracy at every fixed frame count of the schedule, so the saving is visible.

Agreement: every vote parses, and (video QA, counting, classification) all votes name the same
option, or (temporal grounding) every pair of votes overlaps with tIoU >= ``min_tiou``.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass

import torch

from mmrft.eval.evaluate import TASK_SCORERS, evaluate
from mmrft.rewards.temporal import temporal_iou


@dataclass
class ScalingResult:
    """Per schedule step: greedy accuracy at that many frames; and the adaptive run's accuracy and frames."""

    fixed: dict[int, float]
    adaptive_accuracy: float
    mean_frames: float
    frames_used: Counter
    n: int

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "fixed_frames_accuracy": {str(k): v for k, v in self.fixed.items()},
            "adaptive": {"accuracy": self.adaptive_accuracy, "mean_frames": self.mean_frames, "frames_used": dict(self.frames_used)},
        }


def with_frames(sample: dict, frames: int) -> dict:
    """A copy of ``sample`` whose video items sample exactly ``frames`` frames."""
    out = copy.deepcopy(sample)
    for message in out["messages"]:
        for item in message["content"] if isinstance(message["content"], list) else []:
            if item.get("type") == "video":
                item.pop("fps", None)
                item["nframes"] = frames
    return out


def _main_metric(scores: dict[str, float]) -> float:
    for key in ("accuracy", "r1@0.5", "acc@0.5", "mean_iou"):
        if key in scores:
            return scores[key]
    return next(iter(scores.values()))


def _agree(task: str, parsed: list, min_tiou: float) -> bool:
    if any(p is None for p in parsed):
        return False
    if task == "temporal_grounding":
        first = [p[0] for p in parsed]
        return all(temporal_iou(a, b) >= min_tiou for i, a in enumerate(first) for b in first[i + 1 :])
    return len({str(p).strip().lower() for p in parsed}) == 1


@torch.no_grad()
def frame_scaling_eval(
    policy,
    samples: list[dict],
    schedule: tuple[int, ...] = (4, 8, 16),
    votes: int = 4,
    temperature: float = 0.7,
    min_tiou: float = 0.5,
    max_new_tokens: int = 32,
    seed: int = 0,
) -> ScalingResult:
    """Run the adaptive frame schedule over ``samples`` (and greedy at each fixed count)."""
    fixed = {}
    for frames in schedule:
        result = evaluate(policy, [with_frames(s, frames) for s in samples], max_new_tokens=max_new_tokens)
        fixed[frames] = _main_metric(result.metrics) if result.metrics else 0.0
    generator = torch.Generator().manual_seed(seed)
    correct, used = 0.0, Counter()
    for sample in samples:
        scorer = TASK_SCORERS.get(sample["task"])
        for frames in schedule:
            framed = with_frames(sample, frames)
            batch = policy.prompts([framed])
            rollout = policy.sample(batch, votes, max_new_tokens, temperature, generator=generator)
            meta = {"image_size": batch.image_sizes[0], "input_size": batch.input_sizes[0], "convention": policy.coord_convention}
            scored = [scorer(text, framed, meta) for text in rollout.texts]
            if _agree(sample["task"], [s.parsed for s in scored], min_tiou) or frames == schedule[-1]:
                break
        # the majority answer: the vote whose parsed answer is most common (ties: the first)
        keys = [str(s.parsed) for s in scored]
        majority = scored[keys.index(Counter(keys).most_common(1)[0][0])]
        correct += _main_metric(majority.scores)
        used[frames] += 1
    n = len(samples)
    mean_frames = sum(f * c for f, c in used.items()) / max(n, 1)
    return ScalingResult(fixed, correct / max(n, 1), mean_frames, used, n)
