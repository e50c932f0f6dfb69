"""The simulator and the rewards use one geometry module; the COCO evaluator lives with the scorers."""

import numpy as np

import mmrft.envs.driving as world
import mmrft.eval.coco as coco
import mmrft.geometry as geometry
import mmrft.rewards.detection as detection
import mmrft.rewards.trajectory as trajectory


def test_simulator_and_reward_collide_with_the_same_function():
    assert world.obb_overlap is geometry.obb_overlap
    assert world.EGO_SIZE == geometry.DEFAULT_EGO_SIZE
    ego = np.array([[0.0, 0.0, 0.0, 4.0, 2.0], [10.0, 0.0, 0.0, 4.0, 2.0]])
    obstacles = np.array([[[3.9, 0.0, 0.5, 4.0, 2.0]], [[3.9, 0.0, 0.5, 4.0, 2.0]]])
    assert geometry.obb_collide(ego, obstacles)[:, 0].tolist() == [True, False]
    waypoints = ego[:, :2]
    scores = trajectory.trajectory_scores(waypoints, waypoints, obstacles=obstacles, ego_size=(4.0, 2.0))
    assert scores["collision"] == 1.0


def test_rewards_hold_no_geometry_or_coco_evaluator_of_their_own():
    assert not hasattr(detection, "coco_map") and callable(coco.coco_map)
    assert {"obb_overlap", "points_in_polygon"}.isdisjoint(
        name for name, value in vars(trajectory).items() if getattr(value, "__module__", None) == trajectory.__name__
    )
