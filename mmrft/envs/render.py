"""Top-down RGB frames of driving states, ego-centred, batched in numpy.

The frame looks ahead: rows run from AHEAD metres in front of the ego (top) to BEHIND metres
behind it (bottom), columns span the road from left (y = +VIEW_HALF_WIDTH) to right. Road grey,
lane line and road edges white, goal line green, obstacles red, ego blue. Boxes are rasterised by
testing every pixel centre against each box, so the picture is exact to a pixel.
"""

from __future__ import annotations

import numpy as np

from mmrft.envs.driving import GOAL_X, ROAD_HALF_WIDTH, ego_box, obstacle_boxes

SIZE = 56
"""Frame side in pixels (a multiple of 28, so Qwen2.5-VL's processor keeps it as is)."""
MODEL_PIXELS = 112 * 112
"""Pixels a VLM policy sees the frame at: upsampled to 112 x 112, 16 visual tokens of the tiny
Qwen2.5-VL (at its own 56 px the processor would give it 4, each a quarter of the view)."""
AHEAD, BEHIND = 34.0, 8.0
VIEW_HALF_WIDTH = 6.0
COLOURS = {
    "grass": (96, 140, 80),
    "road": (110, 110, 110),
    "line": (235, 235, 235),
    "goal": (40, 200, 60),
    "obstacle": (215, 50, 40),
    "ego": (40, 90, 230),
}


def frame_item(image) -> dict:
    """The frame (a path or a PIL image) as a message item, at `MODEL_PIXELS`."""
    return {"type": "image", "image": image, "min_pixels": MODEL_PIXELS, "max_pixels": MODEL_PIXELS}


def _pixel_grid() -> tuple[np.ndarray, np.ndarray]:
    """Ego-relative world offsets (dx, dy) of every pixel centre, each [SIZE, SIZE]."""
    rows = (np.arange(SIZE) + 0.5) / SIZE
    dx = AHEAD - rows * (AHEAD + BEHIND)
    dy = VIEW_HALF_WIDTH - rows * 2 * VIEW_HALF_WIDTH
    return np.meshgrid(dx, dy, indexing="ij")


_DX, _DY = _pixel_grid()


def _inside(px: np.ndarray, py: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """bool [N, M, S, S]: pixel centres (world coords [N, S, S]) inside boxes [N, M, 5]."""
    dx = px[:, None] - boxes[..., 0, None, None]
    dy = py[:, None] - boxes[..., 1, None, None]
    c, s = np.cos(boxes[..., 2])[..., None, None], np.sin(boxes[..., 2])[..., None, None]
    along, across = dx * c + dy * s, -dx * s + dy * c
    return (np.abs(along) <= boxes[..., 3, None, None] / 2) & (np.abs(across) <= boxes[..., 4, None, None] / 2)


def render(ego: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """uint8 [N, SIZE, SIZE, 3] frames of states ego [N, 4], obstacles [N, K, 6]."""
    n = len(ego)
    px = ego[:, 0, None, None] + _DX[None]
    py = np.broadcast_to(_DY[None], (n, SIZE, SIZE))
    frame = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    frame[:] = COLOURS["grass"]
    road = np.abs(py) <= ROAD_HALF_WIDTH
    frame[road] = COLOURS["road"]
    pixel = (AHEAD + BEHIND) / SIZE
    lines = road & ((np.abs(py) < 0.15) | (np.abs(np.abs(py) - ROAD_HALF_WIDTH) < 0.2))
    frame[lines] = COLOURS["line"]
    frame[road & (np.abs(px - GOAL_X) < pixel / 2)] = COLOURS["goal"]
    if obstacles.shape[1]:
        frame[_inside(px, py, obstacle_boxes(obstacles)).any(axis=1)] = COLOURS["obstacle"]
    frame[_inside(px, py, ego_box(ego)[:, None])[:, 0]] = COLOURS["ego"]
    return frame
