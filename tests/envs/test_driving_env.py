"""The ground-truth driving simulator: gymnasium compliance, dynamics, resets, clipping, verifiers."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mmrft.envs import ENVS
from mmrft.envs import driving as world
from mmrft.envs.expert import log_episodes
from mmrft.envs.render import SIZE, render
from mmrft.envs.vector import DrivingEnv, DrivingVectorEnv
from mmrft.policies.action import controls_for_waypoints


@pytest.mark.filterwarnings("ignore:.*render modes.*")
def test_ground_truth_env_passes_gymnasium_checker():
    check_env(DrivingEnv(), skip_render_check=False)


def test_registry_names_both_environments():
    assert {"driving", "driving_world_model"} <= set(ENVS.names())
    with pytest.raises(KeyError, match="driving"):
        ENVS.get("drving")


def test_scenarios_are_pure_functions_of_split_seed_index():
    a, b = world.sample_scenarios("train", 0, [3, 4]), world.sample_scenarios("train", 0, [3, 4])
    assert np.array_equal(a.obstacles, b.obstacles) and np.array_equal(a.ego, b.ego)
    held = world.sample_scenarios("heldout", 0, [3, 4])
    assert not np.array_equal(a.obstacles, held.obstacles)


def test_group_reset_gives_each_group_one_initial_state():
    env = DrivingVectorEnv(6)
    obs, _ = env.reset(options={"split": "heldout", "indices": [0, 1], "group_size": 3})
    assert np.array_equal(obs["ego"][0], obs["ego"][2]) and np.array_equal(obs["obstacles"][3], obs["obstacles"][5])
    assert not np.array_equal(obs["obstacles"][0], obs["obstacles"][3])
    with pytest.raises(ValueError, match="3 initial states for 6"):
        env.reset(options={"split": "heldout", "indices": [0, 1, 2], "group_size": 1})


def test_vector_env_matches_the_bicycle_model_step_by_step():
    env = DrivingVectorEnv(2, chunk=3)
    obs, _ = env.reset(options={"split": "train", "indices": [0, 1]})
    actions = np.array([[[0.5, 0.2], [0.0, -0.3], [-0.4, 0.1]]] * 2)
    ego = obs["ego"]
    for j in range(3):
        ego = world.bicycle_step(ego, actions[:, j])
    obs, *_ = env.step(actions)
    assert np.allclose(obs["ego"], ego)


def test_out_of_range_and_non_finite_actions_are_clipped_and_counted():
    env = DrivingVectorEnv(1, chunk=2)
    env.reset(options={"split": "train", "indices": [0]})
    _, _, _, _, info = env.step(np.array([[[3.0, 0.0], [np.nan, -0.5]]]))
    assert info["clipped_actions"] == 2 and env.clipped_actions == 2
    assert np.isclose(env.path[0, 1, 3], env.path[0, 0, 3] + world.MAX_ACCEL * world.DT)  # clipped to accel 1


def test_collision_terminates_and_the_episode_is_frozen_after():
    env = DrivingVectorEnv(1, chunk=5)
    scenario = world.sample_scenarios("train", 0, [0])
    scenario.obstacles[0, 0] = [8.0, scenario.ego[0, 1], 0.0, 0.0, 4.5, 2.0]  # parked right ahead
    env.reset(options={"scenarios": scenario})
    full_speed = np.tile([1.0, 0.0], (1, 5, 1))
    for _ in range(3):
        _, reward, terminated, truncated, info = env.step(full_speed)
        if terminated[0]:
            break
    assert terminated[0] and info["collision"][0] and not truncated[0]
    assert env.final_scores()[0]["collision"] == 1.0 and env.final_scores()[0]["reward"] == 0.0
    t = env.t[0]
    _, reward, *_ = env.step(full_speed)
    assert env.t[0] == t and reward[0] == 0.0


def test_env_collision_check_agrees_with_shapely():
    shapely = pytest.importorskip("shapely")
    from shapely.affinity import rotate, translate

    rng = np.random.default_rng(0)
    ego = np.column_stack([rng.uniform(0, 10, 300), rng.uniform(-3, 3, 300), rng.uniform(-1, 1, 300), np.ones(300)])
    obstacles = np.zeros((300, 1, 6))
    obstacles[:, 0, :3] = np.column_stack([rng.uniform(0, 10, 300), rng.uniform(-3, 3, 300), rng.uniform(-3, 3, 300)])
    obstacles[:, 0, 4:] = [4.5, 1.9]

    def polygon(x, y, yaw, length, width):
        box = shapely.geometry.box(-length / 2, -width / 2, length / 2, width / 2)
        return translate(rotate(box, yaw, use_radians=True, origin=(0, 0)), x, y)

    ours = world.collisions(ego, obstacles)
    theirs = [polygon(*e[:3], *world.EGO_SIZE).intersects(polygon(*o[0, :3], *o[0, 4:])) for e, o in zip(ego, obstacles, strict=True)]
    assert ours.tolist() == theirs and 20 < sum(theirs) < 280


def test_waypoint_controls_invert_the_bicycle_model():
    rng = np.random.default_rng(1)
    ego = np.column_stack([np.zeros(50), rng.uniform(-2, 2, 50), rng.uniform(-0.2, 0.2, 50), rng.uniform(4, 8, 50)])
    actions = rng.uniform(-0.8, 0.8, (50, 5, 2))
    states, e = [], ego
    for j in range(5):
        e = world.bicycle_step(e, actions[:, j])
        states.append(e)
    waypoints = np.stack(states, axis=1)[..., :2]
    assert np.allclose(controls_for_waypoints(ego, waypoints), actions, atol=1e-6)


def test_frames_show_the_ego_and_obstacles():
    scenario = world.sample_scenarios("train", 0, [0])
    scenario.obstacles[0, 0, :2] = [scenario.ego[0, 0] + 10, 0.0]
    frame = render(scenario.ego, scenario.obstacles)
    assert frame.shape == (1, SIZE, SIZE, 3) and frame.dtype == np.uint8
    colours = {tuple(c) for c in frame[0].reshape(-1, 3)}
    assert (40, 90, 230) in colours and (215, 50, 40) in colours


def test_expert_logs_mostly_successful_episodes():
    episodes = log_episodes("train", 12, noise=0.0)
    assert episodes["actions"].shape == (12, world.MAX_STEPS, 2)
    assert episodes["collision"].sum() <= 1 and episodes["goal"].mean() >= 0.5
    last = episodes["steps"][0]
    assert np.array_equal(episodes["ego"][0, last], episodes["ego"][0, -1])  # padded with the final state
