"""The world model, its environment, and GRPO of the Gaussian trajectory head through the shared core."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmrft.algorithms.advantages import ADVANTAGES
from mmrft.cli import main as cli
from mmrft.envs.expert import log_episodes
from mmrft.envs.vector import DrivingVectorEnv
from mmrft.envs.world_model import WorldModel, horizon_errors, transitions
from mmrft.envs.world_model_env import WorldModelVectorEnv
from mmrft.eval.closed_loop import rollout, spread_decisions
from mmrft.policies.action import GaussianTrajectoryPolicy

CHUNK = 5


@pytest.fixture(scope="module")
def episodes():
    return log_episodes("train", 16, noise=0.1)


def _fit(episodes, steps: int) -> WorldModel:
    torch.manual_seed(0)
    wm = WorldModel(CHUNK, members=2, hidden=32)
    x, y = map(torch.as_tensor, transitions(episodes, CHUNK))
    wm.set_normalisation(x.numpy(), y.numpy())
    opt = torch.optim.Adam(wm.parameters(), 3e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (2, 128))
        loss = wm.loss(x[idx], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return wm


@pytest.fixture(scope="module")
def model(episodes):
    return _fit(episodes, 300)


def _policy(seed: int = 0) -> GaussianTrajectoryPolicy:
    """A random policy whose mean drives straight ahead at 8 m/s, so rollouts differ in outcome."""
    torch.manual_seed(seed)
    policy = GaussianTrajectoryPolicy(CHUNK, hidden=32)
    with torch.no_grad():
        policy.mean.weight.mul_(0.1)
        policy.mean.bias.copy_(torch.stack([torch.arange(1.0, CHUNK + 1), torch.zeros(CHUNK)], dim=1).flatten())
    return policy


@pytest.fixture(scope="module")
def bc_policy(episodes):
    """A policy cloned briefly from the expert, so some rollouts of a group succeed and some fail."""
    from mmrft.training.driving import chunk_starts, expert_batch

    policy = _policy()
    pairs = chunk_starts(episodes, CHUNK)
    opt = torch.optim.Adam(policy.parameters(), 3e-3)
    for _ in range(400):
        idx = torch.randint(0, len(pairs), (128,)).numpy()
        loss = -policy.imitation_logprobs(*expert_batch(episodes, pairs[idx], CHUNK)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return policy


def _group_options(groups: int = 3, size: int = 4) -> dict:
    return {"split": "train", "indices": range(groups), "group_size": size}


def test_importance_ratio_is_exactly_one_before_the_first_update(model):
    policy = _policy()
    out = rollout(WorldModelVectorEnv(12, model), policy, _group_options(), seed=3, greedy=False, record=True)
    batch = out["batch"]
    recomputed, _ = policy.decision_logprobs(batch["records"])
    assert recomputed.shape == batch["logprobs"].shape == (int(batch["alive"].sum()), 1)
    ratio = torch.exp(recomputed - batch["logprobs"])
    assert ratio.numel() > 12 and torch.equal(ratio, torch.ones_like(ratio))


class _Recorder:
    """Wraps a policy and keeps the batch size of every call to `act`."""

    def __init__(self, policy):
        self.policy, self.sizes = policy, []

    def act(self, obs, **kwargs):
        self.sizes.append(len(obs["ego"]))
        return self.policy.act(obs, **kwargs)


def test_the_policy_acts_on_live_episodes_only_and_decisions_spread_back(model):
    recorder = _Recorder(_policy())
    out = rollout(WorldModelVectorEnv(12, model), recorder, _group_options(), seed=3, greedy=False, record=True)
    alive = out["batch"]["alive"]
    assert recorder.sizes == alive.sum(0).tolist() and recorder.sizes[-1] < 12  # finished episodes are not asked
    values = torch.arange(float(alive.sum()))[:, None].requires_grad_()
    spread = spread_decisions(values, alive)
    assert spread.shape == (*alive.shape, 1) and (spread[~alive] == 0).all()
    for d in range(alive.shape[1]):  # step-major order: step d's live episodes in env order
        first = int(alive[:, :d].sum())
        assert torch.equal(spread[alive[:, d], d, 0], values[first : first + int(alive[:, d].sum()), 0])
    spread.sum().backward()
    assert torch.equal(values.grad, torch.ones_like(values))


def test_group_advantages_have_zero_mean(model):
    out = rollout(WorldModelVectorEnv(12, model), _policy(), _group_options(), seed=1, greedy=False, record=True)
    rewards = torch.tensor([s["reward"] for s in out["scores"]])
    advantages = ADVANTAGES.get("grpo")(rewards, torch.arange(12) // 4)
    assert torch.allclose(advantages.view(3, 4).mean(1), torch.zeros(3), atol=1e-6)


@pytest.mark.parametrize("kind", ["ground_truth", "world_model"])
def test_rollouts_are_deterministic_under_a_seed(model, kind):
    def run(seed):
        env = DrivingVectorEnv(12) if kind == "ground_truth" else WorldModelVectorEnv(12, model)
        return rollout(env, _policy(), _group_options(), seed=seed, greedy=False, record=True)

    a, b, c = run(5), run(5), run(6)
    offsets = [torch.cat([o for _, o in run["batch"]["records"]]) for run in (a, b, c)]
    assert a["scores"] == b["scores"] and torch.equal(offsets[0], offsets[1])
    assert not torch.equal(offsets[0][:12], offsets[2][:12])  # the first decisions of all 12 episodes


def test_group_members_share_the_world_model_noise(model):
    env = WorldModelVectorEnv(8, model)
    env.reset(seed=0, options=_group_options(2, 4))
    same = np.zeros((8, CHUNK, 2))
    env.step(same)
    assert np.allclose(env.path[:4, 1], env.path[0, 1]) and np.allclose(env.path[4:, 1], env.path[4, 1])


def test_a_non_finite_prediction_ends_the_episode_with_a_flag(model):
    broken = WorldModel(CHUNK, members=2, hidden=32)
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        broken.net[-1].bias[0].fill_(float("nan"))  # member 0 predicts NaN
    env = WorldModelVectorEnv(16, broken)
    env.reset(seed=0, options={"split": "train", "indices": range(16)})
    _, _, terminated, _, info = env.step(np.zeros((16, CHUNK, 2)))
    assert info["nonfinite"].any() and not info["nonfinite"].all()
    assert terminated[info["nonfinite"]].all() and np.isfinite(env.path).all()
    assert all(env.scores[i]["nonfinite"] == 1.0 for i in np.flatnonzero(info["nonfinite"]))


def test_world_model_learns_and_reports_error_against_horizon(episodes, model):
    before = horizon_errors(_fit(episodes, 0), episodes, chunks=3)
    after = horizon_errors(model, episodes, chunks=3)
    assert after["seconds"] == [1.0, 2.0, 3.0]
    assert after["position_error_m"][0] < 0.5 * before["position_error_m"][0]


def _write_parts(tmp_path, model, episodes, policy) -> dict:
    model.save_pretrained(tmp_path / "wm")
    policy.save_pretrained(tmp_path / "bc")
    np.savez(tmp_path / "train.npz", **episodes)
    np.savez(tmp_path / "heldout.npz", **episodes)
    return {
        "stage": "action_grpo",
        "world_model": {"path": str(tmp_path / "wm")},
        "policy": {"init": str(tmp_path / "bc")},
        "data": {"train": str(tmp_path / "train.npz"), "heldout": str(tmp_path / "heldout.npz")},
        "grpo": {"scenarios_per_step": 4, "group_size": 4, "beta": 0.1},
        "eval_episodes": 4,
        "lr": 1.0e-3,
        "log_every": 1,
        "eval_every": 0,
    }


def test_grpo_step_updates_the_policy_only(tmp_path, model, episodes, bc_policy):
    from mmrft.config import DrivingConfig, from_dict
    from mmrft.training.driving import ActionGRPOStage

    config = from_dict(DrivingConfig, {**_write_parts(tmp_path, model, episodes, bc_policy), "output_dir": str(tmp_path / "run")})
    stage = ActionGRPOStage(config)
    world_before = {k: v.clone() for k, v in stage.world_model.state_dict().items()}
    policy_before = {k: v.clone() for k, v in stage.model.named_parameters()}
    metrics = stage.train_step(torch.Generator().manual_seed(0))
    assert 0 <= metrics["rollout/collision"] <= 1 and np.isfinite(metrics["loss"])
    assert all(p.grad is None for p in stage.world_model.parameters())
    assert all(p.grad is None for p in stage.reference.parameters())
    assert all(torch.equal(v, stage.world_model.state_dict()[k]) for k, v in world_before.items())
    changed = {k for k, p in stage.model.named_parameters() if not torch.equal(p, policy_before[k])}
    assert changed == set(policy_before), (metrics, set(policy_before) - changed)


def test_dr_grpo_divides_by_the_longest_episode_not_the_batch_width(tmp_path, model, episodes, bc_policy, monkeypatch):
    """Dr. GRPO's normaliser is a constant: ceil(MAX_STEPS / chunk) decisions x 1 log-prob each
    for the Gaussian head (75 / 5 = 15), also when every episode of the batch ends sooner."""
    import mmrft.training.driving as driving
    from mmrft.algorithms.losses import LOSS_AGGREGATIONS
    from mmrft.config import DrivingConfig, from_dict
    from mmrft.envs import driving as world

    seen = []

    class Recording:
        @staticmethod
        def get(name):
            def aggregate(per_token, mask, **kwargs):
                seen.append((mask.shape[1], kwargs["max_tokens"]))
                return LOSS_AGGREGATIONS.get(name)(per_token, mask, **kwargs)

            return aggregate

    monkeypatch.setattr(driving, "LOSS_AGGREGATIONS", Recording)
    parts = _write_parts(tmp_path, model, episodes, bc_policy)
    parts["grpo"] = {**parts["grpo"], "loss_aggregation": "seq_mean_token_sum_norm", "num_iterations": 1}
    stage = driving.ActionGRPOStage(from_dict(DrivingConfig, {**parts, "output_dir": str(tmp_path / "run")}))
    stage.train_step(torch.Generator().manual_seed(0))
    [(width, normaliser)] = seen
    assert normaliser == -(-world.MAX_STEPS // CHUNK) == 15
    assert width < normaliser  # the batch's padded width: what the old normaliser divided by


def test_grpo_stage_resumes_exactly(tmp_path, model, episodes, bc_policy):
    import yaml

    config = tmp_path / "grpo.yaml"
    config.write_text(yaml.safe_dump({**_write_parts(tmp_path, model, episodes, bc_policy), "save_every": 2}))
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert cli(["train", str(config), "--max-steps", "4", "--output-dir", str(full)]) == 0
    assert cli(["train", str(config), "--max-steps", "2", "--output-dir", str(cut)]) == 0
    assert cli(["train", str(config), "--max-steps", "4", "--output-dir", str(cut), "--resume"]) == 0

    def rows(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")} for line in lines]

    assert rows(full) == rows(cut) and len(rows(full)) == 4
    summary = json.loads((full / "summary.json").read_text())
    assert set(summary["final"]["heldout"]["metrics"]) >= {"success", "collision", "offroad", "progress", "wm_reward_gap"}


def test_driving_benchmark_writes_the_eval_contract(tmp_path, bc_policy):
    bc_policy.save_pretrained(tmp_path / "policy")
    out = tmp_path / "eval"
    code = cli(["eval", "--benchmark", "driving", "--model", str(tmp_path / "policy"), "--data", "split=heldout", "episodes=6", "--output-dir", str(out)])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["benchmark"] == "driving" and report["n"] == 6 and report["failures"] == {}
    assert {"success", "collision", "offroad", "progress", "l2@1s", "l2@2s", "l2@3s"} <= set(report["metrics"])
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and np.mean([r["collision"] for r in rows]) == report["metrics"]["collision"]
    assert cli(["eval", "--benchmark", "driving", "--model", str(tmp_path / "policy"), "--data", "split=heldout", "nope=1", "--output-dir", str(out)]) == 2
