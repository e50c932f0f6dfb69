"""A scripted driving expert with noise, and the logged episodes it produces.

The expert is a lattice planner in the true dynamics (`expert_actions`): it follows each of a
grid of (lateral target, speed) set-points for three seconds and takes the safest one that makes
progress and ends in the instructed lane. Gaussian noise on every action (and a per-episode cruise
speed) makes the data varied and imperfect.

    python -m mmrft.envs.expert --out data/driving --train 600 --heldout 200

writes `train.npz` and `heldout.npz`: ego [E, T + 1, 4], obstacles [E, T + 1, K, 6], actions
[E, T, 2] (normalised), lane [E], steps [E] (valid actions per episode), plus the episode's
score components (collision, offroad, goal). Rows after an episode ends repeat its last state.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mmrft.envs import driving as world
from mmrft.envs.vector import DrivingVectorEnv

HORIZON = 15
"""Steps (3 s) each candidate is followed for when the expert looks ahead."""
MARGIN = 0.8
"""Metres added to the ego's length and width in the expert's look-ahead collision check."""
TARGET_Y = np.linspace(-2.5, 2.5, 11)
SPEED_FRACTIONS = np.linspace(0.0, 1.0, 5)


def track(ego: np.ndarray, target_y: np.ndarray, target_v: np.ndarray) -> np.ndarray:
    """Normalised (accel, steer) [N, 2] steering towards lateral position `target_y` at speed `target_v`."""
    desired_yaw = np.clip(0.35 * (target_y - ego[:, 1]), -0.4, 0.4)
    steer = np.clip(2.0 * (desired_yaw - ego[:, 2]) / world.MAX_STEER, -1, 1)
    accel = np.clip((target_v - ego[:, 3]) / world.MAX_ACCEL, -1, 1)
    return np.stack([accel, steer], axis=-1)


def expert_actions(ego: np.ndarray, obstacles: np.ndarray, lane: np.ndarray, cruise: np.ndarray) -> np.ndarray:
    """Normalised (accel, steer) [N, 2] for states ego [N, 4], obstacles [N, K, 6], instructed lane [N].

    A lattice planner in the true dynamics: every candidate (lateral target in `TARGET_Y`, speed
    in `SPEED_FRACTIONS` x cruise) is tracked for `HORIZON` steps against the obstacles'
    constant-velocity forecast; the expert takes the first action of the best candidate by
    score = -100 (collision with a MARGIN-inflated ego box, or leaving the road)
            + distance gained - 2 |y_end - lane|.
    """
    n = len(ego)
    ty, fv = (a.reshape(-1) for a in np.meshgrid(TARGET_Y, SPEED_FRACTIONS, indexing="ij"))
    c = len(ty)
    e, o = np.repeat(ego, c, axis=0), np.repeat(obstacles, c, axis=0)
    target_y, target_v = np.tile(ty, n), np.tile(fv, n) * np.repeat(cruise, c)
    first = track(e, target_y, target_v)
    unsafe = np.zeros(n * c, dtype=bool)
    size = np.array(world.EGO_SIZE) + MARGIN
    for _ in range(HORIZON):
        e, o = world.bicycle_step(e, track(e, target_y, target_v)), world.obstacles_step(o)
        unsafe |= world.obb_overlap(world.ego_box(e, size)[:, None], world.obstacle_boxes(o)).any(axis=-1)
        unsafe |= np.abs(e[:, 1]) > world.ROAD_HALF_WIDTH - 1.0
    score = -100.0 * unsafe + (e[:, 0] - np.repeat(ego[:, 0], c)) - 2.0 * np.abs(e[:, 1] - np.repeat(lane, c))
    best = score.reshape(n, c).argmax(axis=1)
    return first.reshape(n, c, 2)[np.arange(n), best]


def log_episodes(split: str, count: int, seed: int = 0, noise: float = 0.1, start: int = 0) -> dict[str, np.ndarray]:
    """Run the noisy expert on scenarios `start .. start + count` of `split` in the ground truth."""
    env = DrivingVectorEnv(count, chunk=1)
    env.reset(options={"split": split, "seed": seed, "indices": range(start, start + count)})
    rng = np.random.default_rng([seed, world.SPLITS[split], 7])
    cruise = rng.uniform(7.0, 9.0, count)
    actions = np.zeros((count, world.MAX_STEPS, 2))
    for t in range(world.MAX_STEPS):
        if env.done.all():
            break
        ego, obstacles = env.current()
        act = np.clip(expert_actions(ego, obstacles, env.lane, cruise) + rng.normal(0, noise, (count, 2)), -1, 1)
        actions[~env.done, t] = act[~env.done]
        env.step(act[:, None])
    steps = env.t.copy()
    ego, obstacles = env.path.copy(), env.obstacle_path.copy()
    for i in range(count):  # repeat the last state after the episode's end
        ego[i, steps[i] + 1 :] = ego[i, steps[i]]
        obstacles[i, steps[i] + 1 :] = obstacles[i, steps[i]]
    scores = env.final_scores()
    return {
        "ego": ego,
        "obstacles": obstacles,
        "actions": actions,
        "lane": env.lane.copy(),
        "steps": steps,
        **{key: np.array([s[key] for s in scores]) for key in ("collision", "offroad", "goal")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Log noisy-expert driving episodes for world-model and BC training.")
    parser.add_argument("--out", default="data/driving")
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--heldout", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian noise on normalised actions")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", args.train), ("heldout", args.heldout)):
        episodes = log_episodes(split, count, args.seed, args.noise)
        np.savez_compressed(out / f"{split}.npz", **episodes)
        rates = ", ".join(f"{key} {episodes[key].mean():.3f}" for key in ("collision", "offroad", "goal"))
        print(f"{split}: {count} episodes, {int(episodes['steps'].sum())} steps; {rates}")


if __name__ == "__main__":
    main()
