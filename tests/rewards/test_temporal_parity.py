"""Temporal IoU equals the benchmarks' reference formula (TALL / 2D-TAN's `iou`), reversed and zero-length intervals included."""

import numpy as np
import pytest

from mmrft.eval.evaluate import TASK_SCORERS
from mmrft.rewards.temporal import temporal_iou


def reference_iou(pred, gt):
    """inter = max(0, min(ends) - max(starts)); union = max(ends) - min(starts) (the hull)."""
    inter = max(0.0, min(pred[1], gt[1]) - max(pred[0], gt[0]))
    return inter / (max(pred[1], gt[1]) - min(pred[0], gt[0]))


def test_temporal_iou_matches_the_reference_formula():
    rng = np.random.default_rng(0)
    cases = [((5.0, 2.0), (1.0, 6.0)), ((3.0, 3.0), (1.0, 6.0)), ((0.0, 1.0), (1.0, 2.0)), ((2.0, 8.0), (3.0, 5.0))]
    for _ in range(2000):
        gs, ge = sorted(rng.uniform(0, 30, 2))
        ps, pe = rng.uniform(0, 30, 2)  # reversed half the time
        if rng.random() < 0.1:
            pe = ps  # zero length
        cases.append(((ps, pe), (gs, ge)))
    ours = [temporal_iou(p, g) for p, g in cases]
    assert ours == pytest.approx([reference_iou(p, g) for p, g in cases], abs=1e-12)
    assert ours[:3] == [0.0, 0.0, 0.0]  # reversed, zero-length, touching


def test_eval_takes_the_answered_moment_as_given():
    """A moment past the video's end is not clipped to the duration in eval: tIoU = 2 / 8, not 2 / 5."""
    sample = {"id": "q", "task": "temporal_grounding", "solution": [3.0, 7.0], "duration": 8.0}
    scored = TASK_SCORERS.get("temporal_grounding")("<answer>[5, 11]</answer>", sample, {})
    assert scored.scores["miou"] == pytest.approx(reference_iou((5.0, 11.0), (3.0, 7.0))) == pytest.approx(0.25)
    assert scored.scores["r1@0.3"] == 0.0
