"""Trajectories: waypoint parsing, displacement errors, oriented-box collision (parity with shapely), the reward."""

import math

import numpy as np
import pytest

from mmrft.rewards import get_reward, reward_spec
from mmrft.geometry import obb_collide, obb_overlap, points_in_polygon
from mmrft.rewards.trajectory import (
    ade,
    fde,
    headings,
    l2_at_horizons,
    parse_waypoints,
    rollout_components,
    progress,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[(1, 2), (3, 4)]", [[1, 2], [3, 4]]),
        ("[[1.5,-2],[3e1,4]]", [[1.5, -2], [30, 4]]),
        ("[(1, 2)]", [[1, 2]]),
        ("[(1, 2), (3, 4),]", [[1, 2], [3, 4]]),
        ("(1, 2), (3, 4)", None),
        ("[(1, 2) (3, 4)]", None),
        ("[(1, 2, 3)]", None),
        ("[(1, 2), [3, 4)]", None),
        ("[(nan, 2)]", None),
        ("[(1e9, 2)]", None),
        ("[]", None),
        ("", None),
        ("[(１, 2)]", None),
    ],
)
def test_parse_waypoints(text, expected):
    got = parse_waypoints(text)
    assert (got is None and expected is None) or got.tolist() == expected


def test_displacement_errors():
    gt = np.array([[1.0, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0]])
    pred = gt + np.array([[0, 0], [0, 1], [0, 0], [0, 2], [0, 0], [0, 3]])
    assert ade(pred, gt) == pytest.approx(1.0)
    assert fde(pred, gt) == 3.0
    assert l2_at_horizons(pred, gt, [1, 2, 3, 4], dt=0.5) == {1: 0.5, 2: pytest.approx(0.75), 3: 1.0}
    assert l2_at_horizons(pred, gt, [1, 2, 3], dt=0.5, average=False) == {1: 1.0, 2: 2.0, 3: 3.0}


def test_headings_follow_motion():
    points = np.array([[0.0, 0], [1, 0], [1, 1], [1, 1], [0, 1]])
    np.testing.assert_allclose(headings(points), [0, 0, math.pi / 2, math.pi / 2, math.pi])


OBB_CASES = [
    # case, a, b, overlap
    ("same box", [0, 0, 0, 4, 2], [0, 0, 0, 4, 2], True),
    ("apart along x", [0, 0, 0, 4, 2], [5, 0, 0, 4, 2], False),
    ("touching edges", [0, 0, 0, 4, 2], [4, 0, 0, 4, 2], True),
    ("rotated corner reaches", [0, 0, 0, 4, 2], [3.3, 0, math.pi / 4, 2, 2], True),
    ("rotated, near miss", [0, 0, 0, 4, 2], [2 + math.sqrt(2) + 0.01, 0, math.pi / 4, 2, 2], False),
    ("axis-aligned test would say hit", [0, 0, math.pi / 4, 6, 0.5], [2.0, -2.0, math.pi / 4, 6, 0.5], False),
    ("crossing thin boxes", [0, 0, 0, 10, 0.2], [0, 0, math.pi / 2, 10, 0.2], True),
    ("contained", [0, 0, 0.3, 10, 10], [0.5, 0.5, 1.0, 1, 1], True),
]


@pytest.mark.parametrize("case, a, b, expected", OBB_CASES, ids=[c[0] for c in OBB_CASES])
def test_obb_overlap_table(case, a, b, expected):
    assert bool(obb_overlap(np.array(a), np.array(b))) is expected
    assert bool(obb_overlap(np.array(b), np.array(a))) is expected


def _polygon(box):
    from shapely.geometry import Polygon

    x, y, yaw, length, width = box
    u = np.array([math.cos(yaw), math.sin(yaw)]) * length / 2
    v = np.array([-math.sin(yaw), math.cos(yaw)]) * width / 2
    c = np.array([x, y])
    return Polygon([c + u + v, c - u + v, c - u - v, c + u - v])


def random_boxes(rng, shape, spread=10.0):
    """Valid oriented boxes (x, y, yaw, length, width) with positive extents."""
    xy = rng.uniform(-spread, spread, shape + (2,))
    yaw = rng.uniform(-math.pi, math.pi, shape + (1,))
    size = rng.uniform(0.5, 6.0, shape + (2,))
    return np.concatenate([xy, yaw, size], axis=-1)


def test_obb_collide_matches_shapely():
    pytest.importorskip("shapely")
    rng = np.random.default_rng(0)
    T, K = 50, 40  # 2,000 (ego, obstacle, step) pairs
    ego, obstacles = random_boxes(rng, (T,)), random_boxes(rng, (T, K))
    ours = obb_collide(ego, obstacles)
    assert ours.shape == (T, K)
    theirs = np.array([[_polygon(ego[t]).intersects(_polygon(obstacles[t, k])) for k in range(K)] for t in range(T)])
    np.testing.assert_array_equal(ours, theirs)
    assert 0.1 < ours.mean() < 0.9  # both verdicts well represented


def test_points_in_polygon():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    points = np.array([[5, 5], [15, 5], [-1, -1], [9.9, 0.1]])
    assert points_in_polygon(points, square).tolist() == [True, False, False, True]


def test_progress():
    reference = np.array([[0.0, 0], [10, 0], [10, 10]])
    assert progress(np.array([[10.0, 5]]), reference) == pytest.approx(0.75)
    assert progress(np.array([[-5.0, 3]]), reference) == 0.0
    assert progress(np.array([[20.0, 20]]), reference) == 1.0


GT = [[2.0, 0.0], [4.0, 0.0], [6.0, 0.0], [8.0, 0.0]]
ROAD = [[-5, -4], [20, -4], [20, 4], [-5, 4]]
OBSTACLE_ON_PATH = [[[30, 30, 0, 4, 2]], [[30, 30, 0, 4, 2]], [[6.5, 0.5, 0.2, 4, 2]], [[30, 30, 0, 4, 2]]]
OBSTACLE_AWAY = [[[30, 30, 0, 4, 2]]] * 4
TRAJECTORY_CASES = [
    ("exact", "<answer>[(2, 0), (4, 0), (6, 0), (8, 0)]</answer>", {}, 1.0),
    ("bare text", "[(2, 0), (4, 0), (6, 0), (8, 0)]", {}, 1.0),
    ("offset by 1 m", "<answer>[(2, 1), (4, 1), (6, 1), (8, 1)]</answer>", {},
     pytest.approx(0.5 * math.exp(-0.5) + 0.5)),
    ("stops halfway", "<answer>[(1, 0), (2, 0), (3, 0), (4, 0)]</answer>", {},
     pytest.approx(0.5 * math.exp(-2.5 / 2) + 0.5 / 3)),  # 2 m along the 6 m reference
    ("collision", "<answer>[(2, 0), (4, 0), (6, 0), (8, 0)]</answer>", {"obstacles": OBSTACLE_ON_PATH}, 0.0),
    ("obstacles elsewhere", "<answer>[(2, 0), (4, 0), (6, 0), (8, 0)]</answer>", {"obstacles": OBSTACLE_AWAY}, 1.0),
    ("off road", "<answer>[(2, 0), (4, 5), (6, 0), (8, 0)]</answer>", {"road": ROAD}, 0.0),
    ("on road", "<answer>[(2, 0), (4, 0), (6, 0), (8, 0)]</answer>", {"road": ROAD}, 1.0),
    ("too few waypoints", "<answer>[(2, 0), (4, 0), (6, 0)]</answer>", {}, 0.0),
    ("malformed", "<answer>[(2, 0), (4, 0), (6, 0), (8)]</answer>", {}, 0.0),
    ("empty", "", {}, 0.0),
    ("array completion", np.array(GT), {}, 1.0),
    ("array with yaw", np.column_stack([GT, np.zeros(4)]), {}, 1.0),
    ("malformed obstacles ignored", "<answer>[(2, 0), (4, 0), (6, 0), (8, 0)]</answer>", {"obstacles": [[1, 2]]}, 1.0),
]


@pytest.mark.parametrize("case, completion, columns, expected", TRAJECTORY_CASES, ids=[c[0] for c in TRAJECTORY_CASES])
def test_trajectory_reward(case, completion, columns, expected):
    [score] = get_reward("trajectory")([completion], solution=[GT], **{k: [v] for k, v in columns.items()})
    assert score == expected


def test_trajectory_components_and_bad_solution():
    spec = reward_spec("trajectory")
    out = spec.components(["<answer>[(2, 1), (4, 1), (6, 1), (8, 1)]</answer>", "x"], solution=[GT, "not waypoints"])
    assert out["ade"] == [1.0, None] and out["fde"] == [1.0, None]
    assert out["collision"] == [0.0, None] and out["goal"] == [1.0, None]
    assert spec.fn(["x"], solution=[[]]) == [None]


@pytest.mark.parametrize(
    ("name", "path", "expected"),
    [
        ("reaches the goal", [[0, 0, 0], [5, 0, 0], [10, 0, 0]], {"reward": 1.0, "goal": 1.0, "progress": 1.0, "collision": 0.0}),
        ("half way", [[0, 0, 0], [5, 0, 0]], {"reward": 0.25, "goal": 0.0, "progress": 0.5, "collision": 0.0}),
        ("hits the parked car", [[0, 0, 0], [5, 0, 0], [5, 3, 0]], {"reward": 0.0, "collision": 1.0}),
        ("leaves the road", [[0, 0, 0], [5, 0, 0], [10, 12, 0]], {"reward": 0.0, "offroad": 1.0}),
    ],
)
def test_driving_rollout_reward(name, path, expected):
    from mmrft.rewards import get_reward

    obstacles = [[[50, 50, 0, 4, 2]], [[50, 50, 0, 4, 2]], [[5, 3, 0, 4, 2]]][: len(path)]
    columns = {"goal": [[10, 0]], "obstacles": [obstacles], "road": [[[-5, -5], [20, -5], [20, 5], [-5, 5]]]}
    scores = rollout_components([path], **columns)
    for key, value in expected.items():
        assert scores[key][0] == pytest.approx(value), (name, key)
    assert get_reward("driving_rollout")([path], **columns) == scores["reward"]
    assert get_reward("driving_rollout")([path], goal=[[1, 2, 3]]) == [None]  # malformed goal
