"""Driving environments with gymnasium's vector API, stepping action chunks.

`ChunkedDrivingEnv` holds what the ground truth and the world model share: scenarios and
group-aware resets, action clipping, per-step termination by the reward library's verifiers
(collision by the separating-axis test, off-road, goal line), frozen finished episodes, and the
episode score from the registered `driving_rollout` verifier. Subclasses supply `advance`, which
turns states and an action chunk into the chunk's H next states.

Resets (`options`): ``{"scenarios": Scenarios}`` or ``{"split": ..., "indices": [...]}``, each with
an optional ``"group_size": G`` that repeats every initial state G times in a row (a GRPO group);
without options, `num_envs` training scenarios are drawn from the reset seed. Autoreset is off: a
finished episode stays frozen (reward 0) until the next reset.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from mmrft.envs import driving as world
from mmrft.envs.render import SIZE, render
from mmrft.rewards.trajectory import rollout_scores

CHUNK = 5
"""Simulator steps per action chunk (1 s)."""
GOAL_RADIUS = 3.0
"""A crossing counts as reaching the goal within this distance of (GOAL_X, instructed lane)."""


def observation_space(frames: bool) -> spaces.Dict:
    k, bound = world.NUM_OBSTACLES, 1e3  # far beyond anything reachable in an episode
    items = {
        "ego": spaces.Box(-bound, bound, (4,), np.float64),
        "obstacles": spaces.Box(-bound, bound, (k, 6), np.float64),
        "lane": spaces.Box(-world.ROAD_HALF_WIDTH, world.ROAD_HALF_WIDTH, (1,), np.float64),
    }
    if frames:
        items["image"] = spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
    return spaces.Dict(items)


class ChunkedDrivingEnv(VectorEnv):
    """Shared episode logic of the driving environments (see the module docstring)."""

    metadata = {"autoreset_mode": AutoresetMode.DISABLED, "render_modes": ["rgb_array"]}

    def __init__(self, num_envs: int, chunk: int = CHUNK, frames: bool = False):
        self.num_envs, self.chunk, self.frames = num_envs, chunk, frames
        self.single_observation_space = observation_space(frames)
        self.single_action_space = spaces.Box(-1.0, 1.0, (chunk, 2), np.float32)
        self._set_spaces()
        self._np_random = np.random.default_rng()
        self.render_mode = "rgb_array"

    def _set_spaces(self) -> None:
        from gymnasium.vector.utils import batch_space

        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    # -- what subclasses provide ------------------------------------------------------------
    def advance(self, ego: np.ndarray, obstacles: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States after each step of the chunk: ego [N, H, 4], obstacles [N, H, K, 6]."""
        raise NotImplementedError

    def on_reset(self, scenarios: world.Scenarios, group_size: int) -> None:
        """Hook for per-group state (the world model's noise)."""

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        options = options or {}
        group_size = int(options.get("group_size", 1))
        if "scenarios" in options:
            scenarios = options["scenarios"]
        elif "indices" in options:
            scenarios = world.sample_scenarios(options.get("split", "train"), int(options.get("seed", 0)), options["indices"])
        else:
            indices = self._np_random.integers(0, 2**31 - 1, self.num_envs // group_size)
            scenarios = world.sample_scenarios("train", 0, indices)
        scenarios = scenarios.repeat(group_size)
        if len(scenarios) != self.num_envs:
            raise ValueError(f"reset: {len(scenarios)} initial states for {self.num_envs} environments")
        self.lane = scenarios.lane.astype(np.float64)
        n, steps = self.num_envs, world.MAX_STEPS + 1
        self.path = np.zeros((n, steps, 4))
        self.obstacle_path = np.zeros((n, steps, world.NUM_OBSTACLES, 6))
        self.path[:, 0], self.obstacle_path[:, 0] = scenarios.ego, scenarios.obstacles
        self.t = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.clipped_actions = 0
        self.scores: list[dict | None] = [None] * n
        self.flags = {key: np.zeros(n, dtype=bool) for key in ("collision", "offroad", "nonfinite", "goal_line")}
        self.on_reset(scenarios, group_size)
        return self._observe(), {}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.size != self.num_envs * self.chunk * 2:
            raise ValueError(f"step: actions of shape {actions.shape} for {self.num_envs} environments x chunks of [{self.chunk}, 2]")
        actions = actions.reshape(self.num_envs, self.chunk, 2)
        actions, out_of_range = clip_and_count(actions, ~self.done)
        self.clipped_actions += out_of_range
        rows = np.arange(self.num_envs)
        ego, obstacles = self.current()
        ego_seq, obstacle_seq = self.advance(ego, obstacles, actions)
        reward = np.zeros(self.num_envs)
        truncated = np.zeros(self.num_envs, dtype=bool)
        start_done = self.done.copy()
        for j in range(self.chunk):
            live = ~self.done
            if not live.any():
                break
            e, o = ego_seq[:, j], obstacle_seq[:, j]
            finite = np.isfinite(e).all(axis=-1) & np.isfinite(o).all(axis=(-2, -1))
            self.flags["nonfinite"] |= live & ~finite
            e, o = np.where(finite[:, None], e, ego), np.where(finite[:, None, None], o, obstacles)
            self.t[live & finite] += 1
            step_rows = rows[live & finite]
            self.path[step_rows, self.t[step_rows]] = e[step_rows]
            self.obstacle_path[step_rows, self.t[step_rows]] = o[step_rows]
            reward[live & finite] += (e[:, 0] - ego[:, 0])[live & finite] / world.GOAL_X
            ego, obstacles = e, o
            hit, off, line = world.collisions(e, o), world.off_road(e), world.at_goal(e)
            for key, value in (("collision", hit), ("offroad", off), ("goal_line", line)):
                self.flags[key] |= live & finite & value
            ended = live & (~finite | hit | off | line)
            truncated |= live & ~ended & (self.t >= world.MAX_STEPS)
            self.done |= ended | truncated
        newly_done = self.done & ~start_done
        terminated = newly_done & ~truncated
        for i in np.flatnonzero(newly_done):
            self.scores[i] = self.episode_score(i)
            reward[i] += self.scores[i]["goal"] - self.scores[i]["collision"] - self.scores[i]["offroad"]
        info = {
            "episode_done": newly_done,
            "clipped_actions": out_of_range,
            **{key: value.copy() for key, value in self.flags.items()},
        }
        return self._observe(), reward, terminated, truncated, info

    def render(self):
        return render(*self.current())

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """Every environment's latest state: ego [N, 4], obstacles [N, K, 6] (copies)."""
        rows = np.arange(self.num_envs)
        return self.path[rows, self.t], self.obstacle_path[rows, self.t]

    # -- episodes ---------------------------------------------------------------------------
    def episode_poses(self, i: int) -> np.ndarray:
        """Environment i's executed poses [T + 1, 3] (x, y, yaw), the start included."""
        return self.path[i, : self.t[i] + 1, :3]

    def episode_score(self, i: int) -> dict:
        """`driving_rollout` verifier metrics of episode i so far; `nonfinite` flags a world-model failure."""
        poses = self.episode_poses(i)
        boxes = world.obstacle_boxes(self.obstacle_path[i, : self.t[i] + 1])
        goal = (world.GOAL_X, self.lane[i])
        score = rollout_scores(poses, boxes, world.ROAD, goal, GOAL_RADIUS, world.EGO_SIZE)
        return {**score, "nonfinite": float(self.flags["nonfinite"][i]), "steps": int(self.t[i])}

    def final_scores(self) -> list[dict]:
        """Every environment's episode score (finished or not)."""
        return [s if s is not None else self.episode_score(i) for i, s in enumerate(self.scores)]

    def _observe(self) -> dict:
        ego, obstacles = self.current()
        obs = {"ego": ego, "obstacles": obstacles, "lane": self.lane[:, None].copy()}
        if self.frames:
            obs["image"] = render(ego, obstacles)
        return obs


def clip_and_count(actions: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, int]:
    """Actions clipped to [-1, 1] (non-finite entries become 0), and the out-of-range count over live envs."""
    bad = ~np.isfinite(actions)
    safe = np.where(bad, 0.0, actions)
    out_of_range = (bad | (np.abs(safe) > 1.0)) & live[:, None, None]
    return np.clip(safe, -1.0, 1.0), int(out_of_range.sum())


class DrivingVectorEnv(ChunkedDrivingEnv):
    """The ground-truth simulator: the kinematic bicycle and constant-velocity obstacles."""

    def advance(self, ego, obstacles, actions):
        egos, obstacle_states = [], []
        for j in range(actions.shape[1]):
            ego, obstacles = world.bicycle_step(ego, actions[:, j]), world.obstacles_step(obstacles)
            egos.append(ego)
            obstacle_states.append(obstacles)
        return np.stack(egos, axis=1), np.stack(obstacle_states, axis=1)


class DrivingEnv(gym.Env):
    """One ground-truth episode with gymnasium's single-environment API (frames included)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / world.DT)}

    def __init__(self, chunk: int = CHUNK, render_mode: str | None = "rgb_array"):
        self._vector = DrivingVectorEnv(1, chunk, frames=True)
        self.observation_space = self._vector.single_observation_space
        self.action_space = self._vector.single_action_space
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self._vector.reset(seed=seed, options=options)
        return _first(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self._vector.step(np.asarray(action)[None])
        score = self._vector.scores[0]
        return _first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), {"score": score}

    def render(self):
        return self._vector.render()[0]


def _first(obs: dict) -> dict:
    return {key: value[0] for key, value in obs.items()}
