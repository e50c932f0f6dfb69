"""Driving trajectories: parse waypoints, displacement errors, collision, off-road, progress.

Waypoints are `(x, y)` in metres in one frame shared with the ground truth, obstacles and road,
one per time step. An oriented box is `(x, y, yaw, length, width)`: centre, heading in radians
(length along the heading), full extents. The ego's yaw at each step is the heading of its
motion (from the previous waypoint; the first step looks at the next one; a step shorter than
1 mm keeps the previous heading), unless waypoints come as `[T, 3]` arrays with yaw. The box geometry (collision, inside the road)
is `mmrft.geometry`'s, which the simulator uses too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmrft.geometry import DEFAULT_EGO_SIZE, obb_collide, points_in_polygon
from mmrft.rewards.parsing import MAX_COORDINATE, completion_text, extract_answer
from mmrft.rewards.registry import register_reward

MAX_WAYPOINTS = 1000

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)|\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]"
_WAYPOINTS = re.compile(rf"\[\s*(?:{_PAIR})(?:\s*,\s*(?:{_PAIR}))*\s*,?\s*\]", re.ASCII)
_PAIR_RE = re.compile(_PAIR, re.ASCII)


def parse_waypoints(text: str) -> np.ndarray | None:
    """`[(x1, y1), (x2, y2), ...]` (or `[[x1, y1], ...]`) as a float array [T, 2]; None if anything else."""
    text = text.strip()
    if len(text) > 64 * MAX_WAYPOINTS or _WAYPOINTS.fullmatch(text) is None:
        return None
    pairs = [[float(g) for g in m.groups() if g is not None] for m in _PAIR_RE.finditer(text)]
    points = np.array(pairs, dtype=float)
    if len(points) > MAX_WAYPOINTS or not np.all(np.isfinite(points)) or np.abs(points).max() > MAX_COORDINATE:
        return None
    return points


def format_waypoints(points: np.ndarray | Sequence[Sequence[float]]) -> str:
    """`[(x1, y1), ...]` with one decimal (metres): the waypoint text `parse_waypoints` reads back."""
    return "[" + ", ".join(f"({x:.1f}, {y:.1f})" for x, y in np.round(np.asarray(points, dtype=float)[:, :2], 1) + 0.0) + "]"


def waypoints_from(completion: Any) -> np.ndarray | None:
    """Waypoints from an action policy's array ([T, 2] or [T, 3] with yaw) or a text completion.

    Text: the last answer block if there is one, else the whole completion, must be a waypoint list.
    """
    if isinstance(completion, np.ndarray) or (
        isinstance(completion, (list, tuple)) and completion and not isinstance(completion[0], dict)
    ):
        try:
            points = np.asarray(completion, dtype=float)
        except (TypeError, ValueError):
            return None
        if points.ndim != 2 or points.shape[1] not in (2, 3) or not len(points) or not np.all(np.isfinite(points)):
            return None
        return points
    text = completion_text(completion)
    answer = extract_answer(text)
    return parse_waypoints(text if answer is None else answer)


def ade(pred: np.ndarray, gt: np.ndarray) -> float:
    """Average displacement error: mean L2 distance between matching waypoints (same length)."""
    return float(np.linalg.norm(pred[:, :2] - gt[:, :2], axis=-1).mean())


def fde(pred: np.ndarray, gt: np.ndarray) -> float:
    """Final displacement error: L2 distance between the last waypoints."""
    return float(np.linalg.norm(pred[-1, :2] - gt[-1, :2]))


def l2_at_horizons(
    pred: np.ndarray, gt: np.ndarray, horizons_s: Sequence[float], dt: float, average: bool = True
) -> dict[float, float]:
    """L2 error at each horizon in seconds, e.g. nuScenes' 1/2/3 s with waypoints every dt = 0.5 s.

    Waypoint i is at time (i + 1) * dt. `average=True` takes the mean error of the waypoints up
    to the horizon (ST-P3 / VAD); `False` the error of the waypoint at the horizon (UniAD).
    A horizon beyond the trajectory is left out.
    """
    errors = np.linalg.norm(pred[:, :2] - gt[:, :2], axis=-1)
    out = {}
    for h in horizons_s:
        steps = round(h / dt)
        if 1 <= steps <= len(errors):
            out[h] = float(errors[:steps].mean() if average else errors[steps - 1])
    return out


def headings(points: np.ndarray) -> np.ndarray:
    """Yaw per waypoint from the direction of motion (see module docstring)."""
    if points.shape[1] >= 3:
        return points[:, 2].copy()
    steps = np.diff(points[:, :2], axis=0)
    yaw = np.zeros(len(points))
    current = math.atan2(steps[0, 1], steps[0, 0]) if len(steps) and np.hypot(*steps[0]) > 1e-3 else 0.0
    for t in range(len(points)):
        if t > 0 and np.hypot(*steps[t - 1]) > 1e-3:
            current = math.atan2(steps[t - 1, 1], steps[t - 1, 0])
        yaw[t] = current
    return yaw


def progress(points: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of the reference polyline's length covered: arc length at the last waypoint's projection."""
    starts, ends = reference[:-1], reference[1:]
    seg = ends - starts
    lengths = np.linalg.norm(seg, axis=1)
    total = lengths.sum()
    if total <= 0:
        return 0.0
    p = points[-1, :2]
    t = np.clip(np.einsum("ij,ij->i", p - starts, seg) / np.maximum(lengths**2, 1e-12), 0.0, 1.0)
    dist = np.linalg.norm(starts + t[:, None] * seg - p, axis=1)
    k = int(np.argmin(dist))
    return float(min(1.0, (lengths[:k].sum() + t[k] * lengths[k]) / total))


def trajectory_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    obstacles: np.ndarray | None = None,
    ego_size: Sequence[float] = DEFAULT_EGO_SIZE,
    road: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    goal: Sequence[float] | None = None,
    goal_radius: float = 2.0,
    ade_scale: float = 2.0,
) -> dict[str, float]:
    """All trajectory metrics for one prediction, and the combined `reward` in [0, 1].

    reward = 0 if the ego's box hits an obstacle at any step or a waypoint leaves the road,
    else 0.5 * exp(-ADE / ade_scale) + 0.5 * progress along `reference` (default: `gt`).
    `goal` defaults to the reference's end.
    """
    reference = gt[:, :2] if reference is None else reference
    ego = np.column_stack([pred[:, :2], headings(pred), np.full(len(pred), ego_size[0]), np.full(len(pred), ego_size[1])])
    collision = bool(obstacles is not None and obstacles.size and obb_collide(ego, obstacles).any())
    offroad = bool(road is not None and not points_in_polygon(pred[:, :2], road).all())
    goal_point = np.asarray(reference[-1] if goal is None else goal, dtype=float)[:2]
    scores = {
        "ade": ade(pred, gt),
        "fde": fde(pred, gt),
        "collision": float(collision),
        "offroad": float(offroad),
        "progress": progress(pred, reference) if len(reference) > 1 else 0.0,
        "goal": float(np.linalg.norm(pred[-1, :2] - goal_point) <= goal_radius),
    }
    safe = not (collision or offroad)
    scores["reward"] = safe * (0.5 * math.exp(-scores["ade"] / ade_scale) + 0.5 * scores["progress"])
    return scores


def score_trajectory(completion: Any, solution: Any, **columns: Any) -> dict[str, float] | None:
    """`trajectory_scores` of a completion against `solution` waypoints; None if the solution is malformed.

    A prediction that does not parse or has a different number of waypoints scores reward 0.
    """
    gt = _array(solution, (None, 2))
    if gt is None or not len(gt):
        return None
    pred = waypoints_from(completion)
    if pred is None or len(pred) != len(gt) or np.abs(pred[:, :2]).max() > MAX_COORDINATE:
        return {"reward": 0.0}
    obstacles = _array(columns.get("obstacles"), (len(gt), None, 5))
    road = _array(columns.get("road"), (None, 2))
    reference = _array(columns.get("reference"), (None, 2))
    ego_size = _array(columns.get("ego_size"), (2,))
    return trajectory_scores(
        pred,
        gt,
        obstacles,
        DEFAULT_EGO_SIZE if ego_size is None else ego_size,
        road if road is not None and len(road) >= 3 else None,
        reference if reference is not None and len(reference) >= 2 else None,
        _array(columns.get("goal"), (2,)),
        goal_radius=_positive(columns.get("goal_radius"), 2.0),
        ade_scale=_positive(columns.get("ade_scale"), 2.0),
    )


_COMPONENTS = ("ade", "fde", "collision", "offroad", "progress", "goal")


def trajectory_components(completions: list[Any], solution: list[Any], **columns: Any) -> dict[str, list[float | None]]:
    """Per-completion `ade`, `fde`, `collision`, `offroad`, `progress`, `goal` and `reward` (None where not computed)."""
    n = len(completions)
    per_row = [{k: (v[i] if isinstance(v, (list, tuple)) and len(v) == n else None) for k, v in columns.items()} for i in range(n)]
    rows = [score_trajectory(c, s, **row) for c, s, row in zip(completions, solution, per_row, strict=True)]
    return {key: [None if row is None else row.get(key) for row in rows] for key in ("reward", *_COMPONENTS)}


@register_reward(
    "trajectory",
    description="0 on collision/off-road, else 0.5*exp(-ADE/2m) + 0.5*progress; waypoints [(x, y), ...]",
    components=trajectory_components,
)
def trajectory_reward(completions: list[Any], solution: list[Any], **columns: Any) -> list[float | None]:
    """Columns: `solution` (gt waypoints [T, 2]); optional `obstacles` ([T, K, 5] oriented boxes), `ego_size`
    (length, width), `road` (drivable polygon [N, 2]), `reference` (polyline), `goal`, `goal_radius`, `ade_scale`."""
    return trajectory_components(completions, solution, **columns)["reward"]


def rollout_scores(
    path: np.ndarray,
    obstacles: np.ndarray | None,
    road: np.ndarray | None,
    goal: Sequence[float],
    goal_radius: float = 2.0,
    ego_size: Sequence[float] = DEFAULT_EGO_SIZE,
    start: Sequence[float] | None = None,
) -> dict[str, float]:
    """Metrics of an executed trajectory (an environment rollout: poses [T, 3] with yaw, or positions
    [T, 2] whose headings follow the motion): collision
    with the obstacles' boxes at the same steps, off-road, progress from `start` (default: the first
    pose) towards `goal` as a fraction of the straight-line distance, and reaching the goal.

    reward = 0 on collision or off-road, else 0.5 * progress + 0.5 * goal.
    """
    origin = np.asarray(path[0, :2] if start is None else start, dtype=float)[:2]
    goal_point = np.asarray(goal, dtype=float)[:2]
    ego = np.column_stack([path[:, :2], headings(path), np.full(len(path), ego_size[0]), np.full(len(path), ego_size[1])])
    collision = bool(obstacles is not None and obstacles.size and obb_collide(ego, obstacles).any())
    offroad = bool(road is not None and not points_in_polygon(path[:, :2], road).all())
    scores = {
        "collision": float(collision),
        "offroad": float(offroad),
        "progress": progress(path, np.stack([origin, goal_point])),
        "goal": float(np.linalg.norm(path[-1, :2] - goal_point) <= goal_radius),
    }
    scores["reward"] = (not (collision or offroad)) * (0.5 * scores["progress"] + 0.5 * scores["goal"])
    return scores


def rollout_components(completions: list[Any], goal: list[Any], **columns: Any) -> dict[str, list[float | None]]:
    """Per-rollout `collision`, `offroad`, `progress`, `goal` and `reward`; None where the goal is malformed."""
    n = len(completions)
    out: dict[str, list[float | None]] = {key: [] for key in ("reward", "collision", "offroad", "progress", "goal")}
    for i, (completion, target) in enumerate(zip(completions, goal, strict=True)):
        row = {k: (v[i] if isinstance(v, (list, tuple)) and len(v) == n else None) for k, v in columns.items()}
        path, goal_point = waypoints_from(completion), _array(target, (2,))
        scores = None
        if goal_point is not None and path is not None:
            ego_size = _array(row.get("ego_size"), (2,))
            scores = rollout_scores(
                path,
                _array(row.get("obstacles"), (len(path), None, 5)),
                _array(row.get("road"), (None, 2)),
                goal_point,
                _positive(row.get("goal_radius"), 2.0),
                DEFAULT_EGO_SIZE if ego_size is None else ego_size,
                _array(row.get("start"), (2,)),
            )
        for key in out:
            out[key].append(None if scores is None else scores[key])
    return out


@register_reward(
    "driving_rollout",
    description="executed poses [T, 3] (or [T, 2]): 0 on collision/off-road, else 0.5*progress to the goal + 0.5*goal reached",
    components=rollout_components,
)
def driving_rollout_reward(completions: list[Any], goal: list[Any], **columns: Any) -> list[float | None]:
    """Columns: `goal` (x, y); optional `obstacles` ([T, K, 5] boxes at the path's steps), `road`
    (drivable polygon), `goal_radius`, `ego_size`, `start` (where progress is measured from)."""
    return rollout_components(completions, goal, **columns)["reward"]


def _positive(value: Any, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    return default


def _array(value: Any, shape: tuple[int | None, ...]) -> np.ndarray | None:
    """`value` as a finite float array of `shape` (None = any size); None if it does not fit."""
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if array.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, array.shape)):
        return None
    return array if np.all(np.isfinite(array)) else None
