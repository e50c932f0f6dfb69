"""The ground-truth driving world: a kinematic bicycle among oriented-box obstacles on a straight road.

Frame: metres, x along the road, y to the left; the road is the band |y| <= ROAD_HALF_WIDTH with
two lanes centred at y = -2 and y = +2. The ego starts at x = 0; the episode's instruction names
the lane it must be in when it passes the goal line x = GOAL_X. Obstacles (parked cars and slower
vehicles) are oriented boxes moving at constant velocity along their heading.

Every scenario is a pure function of (split, seed, index), so held-out initial states are fixed
sets. Everything here is batched over a leading axis in numpy; `DrivingVectorEnv` (gymnasium's
vector API) and `DrivingEnv` (one episode, for gymnasium's checker) are thin shells over it.

State layout, one row per environment: ego ``[x, y, yaw, v]``, obstacles ``[K, 6]`` as
``[x, y, yaw, v, length, width]``. Actions are chunks ``[H, 2]`` of normalised
``(acceleration, steering)`` in [-1, 1]; values outside are clipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmrft.geometry import DEFAULT_EGO_SIZE, obb_overlap

DT = 0.2
"""Seconds per simulator step."""
WHEELBASE = 2.5
MAX_ACCEL = 3.0
"""m/s^2 at action 1."""
MAX_STEER = 0.5
"""Radians at action 1."""
MAX_SPEED = 12.0
ROAD_HALF_WIDTH = 4.0
LANES = (-2.0, 2.0)
GOAL_X = 60.0
NUM_OBSTACLES = 3
MAX_STEPS = 75
"""Steps per episode (15 s) before truncation."""
EGO_SIZE = DEFAULT_EGO_SIZE
ROAD = np.array([[-20.0, -ROAD_HALF_WIDTH], [120.0, -ROAD_HALF_WIDTH], [120.0, ROAD_HALF_WIDTH], [-20.0, ROAD_HALF_WIDTH]])
"""The drivable polygon, as the trajectory verifiers take it."""
SPLITS = {"train": 0, "heldout": 1}


@dataclass
class Scenarios:
    """A batch of initial states: ego [N, 4], obstacles [N, K, 6], instructed lane centre [N]."""

    ego: np.ndarray
    obstacles: np.ndarray
    lane: np.ndarray

    def __len__(self) -> int:
        return len(self.ego)

    def repeat(self, group_size: int) -> Scenarios:
        """Each scenario `group_size` times in a row: the G copies of one GRPO group."""
        return Scenarios(*(np.repeat(a, group_size, axis=0) for a in (self.ego, self.obstacles, self.lane)))

    def select(self, rows) -> Scenarios:
        return Scenarios(self.ego[rows], self.obstacles[rows], self.lane[rows])


def instruction(lane: float) -> str:
    side = "left" if lane > 0 else "right"
    return f"Reach the goal in the {side} lane, hit nothing."


def prompt_text(ego: np.ndarray, lane: float) -> str:
    """What a VLM policy is told besides the frame: the instruction, its speed and lane offset."""
    return f"{instruction(lane)} v {ego[3]:.1f} dy {lane - ego[1]:+.1f}"


def sample_scenario(split: str, seed: int, index: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One initial state, a pure function of (split, seed, index)."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    ego = np.array([0.0, rng.choice(LANES) + rng.uniform(-0.5, 0.5), rng.uniform(-0.05, 0.05), rng.uniform(5.0, 7.0)])
    xs = np.sort(rng.uniform(14.0, 32.0, NUM_OBSTACLES)) + np.arange(NUM_OBSTACLES) * 10.0  # >= 10 m apart
    obstacles = np.zeros((NUM_OBSTACLES, 6))
    for k, x in enumerate(xs):
        moving = rng.random() < 0.5
        speed = rng.uniform(1.0, 3.0) if moving else 0.0
        yaw = 0.0 if moving else rng.uniform(-0.3, 0.3)
        obstacles[k] = [x, rng.choice(LANES) + rng.uniform(-0.4, 0.4), yaw, speed, rng.uniform(3.8, 4.8), rng.uniform(1.7, 2.0)]
    return ego, obstacles, float(rng.choice(LANES))


def sample_scenarios(split: str, seed: int, indices) -> Scenarios:
    rows = [sample_scenario(split, seed, int(i)) for i in indices]
    return Scenarios(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]), np.array([r[2] for r in rows]))


def bicycle_step(ego: np.ndarray, action: np.ndarray) -> np.ndarray:
    """One step of the kinematic bicycle, semi-implicit: speed and heading first, then position.

    v' = clip(v + a dt, 0, MAX_SPEED); yaw' = yaw + v' / L tan(delta) dt; p' = p + v' (cos yaw', sin yaw') dt.
    Updating position with the new speed and heading makes a waypoint sequence map to the
    controls that produce it exactly (`controls_for_waypoints`).
    """
    accel, steer = action[..., 0] * MAX_ACCEL, action[..., 1] * MAX_STEER
    v = np.clip(ego[..., 3] + accel * DT, 0.0, MAX_SPEED)
    yaw = ego[..., 2] + v / WHEELBASE * np.tan(steer) * DT
    return np.stack([ego[..., 0] + v * np.cos(yaw) * DT, ego[..., 1] + v * np.sin(yaw) * DT, yaw, v], axis=-1)


def obstacles_step(obstacles: np.ndarray) -> np.ndarray:
    """Constant velocity along each obstacle's heading."""
    out = obstacles.copy()
    out[..., 0] += obstacles[..., 3] * np.cos(obstacles[..., 2]) * DT
    out[..., 1] += obstacles[..., 3] * np.sin(obstacles[..., 2]) * DT
    return out


def ego_box(ego: np.ndarray, size=EGO_SIZE) -> np.ndarray:
    """The ego's oriented box [..., 5] (x, y, yaw, length, width); `size` (length, width) defaults to the ego's."""
    size = np.broadcast_to(np.asarray(size), ego.shape[:-1] + (2,))
    return np.concatenate([ego[..., :3], size], axis=-1)


def obstacle_boxes(obstacles: np.ndarray) -> np.ndarray:
    return obstacles[..., [0, 1, 2, 4, 5]]


def collisions(ego: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """bool [N]: does the ego's box overlap any obstacle (separating-axis test of the reward library)?"""
    return obb_overlap(ego_box(ego)[:, None, :], obstacle_boxes(obstacles)).any(axis=-1)


def off_road(ego: np.ndarray) -> np.ndarray:
    """bool [N]: is the ego's centre outside the road band?"""
    return np.abs(ego[:, 1]) > ROAD_HALF_WIDTH


def at_goal(ego: np.ndarray) -> np.ndarray:
    return ego[:, 0] >= GOAL_X


def in_lane(ego: np.ndarray, lane: np.ndarray) -> np.ndarray:
    return np.abs(ego[:, 1] - lane) <= 1.5
