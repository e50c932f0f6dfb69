"""Oriented boxes and polygons in the plane: the collision and road geometry that the driving
simulator (`mmrft.envs`) and the trajectory rewards (`mmrft.rewards.trajectory`) share.

An oriented box is `(x, y, yaw, length, width)`: centre, heading in radians (length along the
heading), full extents; metres.
"""

from __future__ import annotations

import numpy as np

DEFAULT_EGO_SIZE = (4.08, 1.73)
"""Length and width of the ego in metres (nuScenes' Renault Zoe): the simulator's car, and the
trajectory rewards' when a sample gives none."""


def obb_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether oriented boxes `a[..., 5]` and `b[..., 5]` (x, y, yaw, length, width) overlap; broadcasts.

    Separating-axis test: two convex polygons are disjoint iff their projections are disjoint on
    some edge normal; a rectangle has two, so four axes. Touching boxes overlap (as in shapely's
    `intersects`).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    d = b[..., :2] - a[..., :2]
    ca, sa, cb, sb = np.cos(a[..., 2]), np.sin(a[..., 2]), np.cos(b[..., 2]), np.sin(b[..., 2])
    al, aw, bl, bw = a[..., 3] / 2, a[..., 4] / 2, b[..., 3] / 2, b[..., 4] / 2
    cos_rel = np.abs(ca * cb + sa * sb)  # |cos(yaw_a - yaw_b)|
    sin_rel = np.abs(sa * cb - ca * sb)
    separated = np.abs(d[..., 0] * ca + d[..., 1] * sa) > al + bl * cos_rel + bw * sin_rel  # a's length axis
    separated |= np.abs(-d[..., 0] * sa + d[..., 1] * ca) > aw + bl * sin_rel + bw * cos_rel  # a's width axis
    separated |= np.abs(d[..., 0] * cb + d[..., 1] * sb) > bl + al * cos_rel + aw * sin_rel  # b's length axis
    separated |= np.abs(-d[..., 0] * sb + d[..., 1] * cb) > bw + al * sin_rel + aw * cos_rel  # b's width axis
    return ~separated


def obb_collide(ego: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """bool[T, K]: does the ego's box at step t (`ego[T, 5]`) overlap obstacle k's box (`obstacles[T, K, 5]`)?"""
    return obb_overlap(np.asarray(ego, dtype=float)[:, None, :], obstacles)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """bool[N]: is each point inside the polygon (even-odd rule, vectorised over points and edges)?"""
    x, y = points[:, 0:1], points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (crosses & (x < x_at)).sum(axis=1) % 2 == 1
