"""The VLM waypoint planner: its data (driving_plan), its open-loop scoring, and driving in closed loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmrft.data.synthetic import write_synthetic_split
from mmrft.data.jsonl import JsonlDataset
from mmrft.data.validate import check_sample
from mmrft.envs import driving as world
from mmrft.envs.vector import CHUNK, DrivingVectorEnv
from mmrft.eval.closed_loop import driving_benchmark, load_action_policy, rollout
from mmrft.eval.evaluate import DATASET_METRICS, TASK_SCORERS
from mmrft.policies.planner import MAX_NEW_TOKENS, WaypointPlannerPolicy
from mmrft.rewards.registry import get_reward
from mmrft.rewards.trajectory import format_waypoints
from mmrft.training.targets import target_text


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    root = tmp_path_factory.mktemp("plans")
    path = write_synthetic_split("driving_plan", "train", root, n=12, seed=0)
    return [json.loads(line) for line in path.read_text().splitlines()], root


def answer(points) -> str:
    return f"<answer>{format_waypoints(points)}</answer>"


def test_plan_samples_are_valid_deterministic_and_the_expert_plan_scores_one(plans, tmp_path):
    samples, root = plans
    for sample in JsonlDataset(root / "train.jsonl"):
        check_sample(sample)
        assert np.asarray(sample["solution"]).shape == (CHUNK, 2)
        assert np.asarray(sample["obstacles"]).shape == (CHUNK, world.NUM_OBSTACLES, 5)
        assert (root / sample["messages"][0]["content"][0]["image"]).is_file()
    again = write_synthetic_split("driving_plan", "train", tmp_path, n=12, seed=0)
    assert [json.loads(line) for line in again.read_text().splitlines()] == samples
    columns = {key: [s[key] for s in samples] for key in ("obstacles", "road", "ego_size")}
    rewards = get_reward("trajectory")([answer(s["solution"]) for s in samples], [s["solution"] for s in samples], **columns)
    assert rewards == pytest.approx([1.0] * len(samples))


def test_a_plan_into_an_obstacle_or_off_the_road_scores_zero(plans):
    sample = plans[0][0]
    box = np.asarray(sample["obstacles"])[:, 0]  # steer the plan through the first obstacle's centres
    into = TASK_SCORERS.get("driving_plan")(answer(box[:, :2]), sample, {})
    assert into.scores["collision"] == 1.0 and into.scores["reward"] == 0.0
    off = np.asarray(sample["solution"]) + [0.0, 20.0]
    assert TASK_SCORERS.get("driving_plan")(answer(off), sample, {}).scores["offroad"] == 1.0


def test_bad_plans_are_invalid_with_a_reason_and_errors_average_over_valid_ones(plans):
    samples = plans[0][:4]
    scorer = TASK_SCORERS.get("driving_plan")
    texts = [answer(samples[0]["solution"]), "no plan", "<answer>turn left</answer>", answer(samples[3]["solution"][:2])]
    scored = [scorer(text, sample, {}) for text, sample in zip(texts, samples)]
    assert [s.failure for s in scored] == [None, "no_answer_block", "unparseable_waypoints", "wrong_waypoint_count"]
    assert [s.scores["valid"] for s in scored] == [1.0, 0.0, 0.0, 0.0]
    bare = scorer(format_waypoints(samples[0]["solution"]), samples[0], {})  # no tags: read as the verifier reads it
    assert bare.failure is None and bare.scores == scored[0].scores
    assert all(s.scores["reward"] == 0.0 for s in scored[1:])
    rows = [{"parsed": s.parsed, **s.scores} for s in scored]
    assert DATASET_METRICS.get("driving_plan")(rows, samples) == {"ade": 0.0, "fde": 0.0}
    shifted = [{"parsed": (np.asarray(samples[0]["solution"]) + [0.0, 1.0]).tolist(), "valid": 1.0}]
    assert DATASET_METRICS.get("driving_plan")(shifted, samples[:1]) == pytest.approx({"ade": 1.0, "fde": 1.0})
    assert DATASET_METRICS.get("driving_plan")(rows[1:], samples[1:]) == {}  # no valid answer: no mean, not NaN


def test_the_planner_follows_its_waypoints_and_holds_course_on_a_bad_answer(tiny_model_dir):
    planner = WaypointPlannerPolicy(str(tiny_model_dir("qwen2_5_vl")), CHUNK)
    ego = np.array([[0.0, -2.0, 0.0, 6.0], [10.0, 2.0, 0.1, 5.0]])
    steps = np.arange(1, CHUNK + 1) * world.DT
    plan = np.stack([steps * 7.0, steps * 0.5], axis=-1)
    points, invalid = planner.waypoints([answer(plan), "<answer>[(1.0, 0.0)]</answer>"], ego)
    assert np.allclose(points[0], ego[0, :2] + np.round(plan, 1))
    heading = np.array([np.cos(0.1), np.sin(0.1)])
    assert np.allclose(points[1], ego[1, :2] + 5.0 * steps[:, None] * heading)
    assert invalid.tolist() == [False, True]


def test_a_planner_checkpoint_drives_the_closed_loop_benchmark(tiny_model_dir):
    path = tiny_model_dir("qwen2_5_vl")
    assert isinstance(load_action_policy(path), WaypointPlannerPolicy)
    report, rows = driving_benchmark(str(path), episodes=2)
    assert report["n"] == 2 and len(rows) == 2
    assert report["failures"]["unparseable_plans"] > 0  # a random model writes no plan, and is told so
    assert set(report["metrics"]) >= {"success", "collision", "offroad", "l2@1s"}


def test_the_sft_target_is_the_expert_plan_in_answer_tags(plans):
    sample = plans[0][0]
    text = target_text(sample, "input_pixels", (56, 56), (112, 112))
    assert text == answer(sample["solution"])
    assert TASK_SCORERS.get("driving_plan")(text, sample, {}).scores["valid"] == 1.0


def test_planner_log_probs_agree_between_sampling_and_training_so_the_ratio_starts_at_one(tiny_model_dir):
    """Closed-loop GRPO in the world model: the recorded answers rescored teacher-forced give the
    sampling log-probs on every answer token; padding past an answer's end is masked out."""
    torch.manual_seed(0)
    planner = WaypointPlannerPolicy(str(tiny_model_dir("qwen2_5_vl")), 2)
    out = rollout(DrivingVectorEnv(2, chunk=2), planner, {"split": "train", "indices": range(1), "group_size": 2}, seed=0, greedy=False, record=True)
    batch = out["batch"]
    tokens = batch["tokens"]
    assert batch["logprobs"].shape == tokens.shape == (int(batch["alive"].sum()), MAX_NEW_TOKENS)
    assert 0 < tokens.sum() < tokens.numel()  # some answers stop early: the padding is masked
    recomputed, entropy = planner.decision_logprobs(batch["records"])
    assert (recomputed - batch["logprobs"])[tokens.bool()].abs().max() <= 1e-4
    assert (recomputed[~batch["tokens"].bool()] == 0).all() and entropy.item() > 0
