"""Closed-loop evaluation of an action policy: run it to the end of every episode, then score.

Success = reached the goal in the instructed lane without collision or leaving the road. The
same function runs the ground truth and the world model, so the gap between the world model's
reward and the ground truth's on the same policy and initial states is one subtraction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmrft.envs import driving as world
from mmrft.envs.expert import log_episodes
from mmrft.envs.vector import CHUNK, ChunkedDrivingEnv, DrivingVectorEnv
from mmrft.rewards.trajectory import l2_at_horizons

METRICS = ("success", "collision", "offroad", "progress", "goal", "reward", "nonfinite")


def rollout(env: ChunkedDrivingEnv, policy, options: dict, seed: int = 0, greedy: bool = True, record: bool = False) -> dict:
    """Run `policy` in `env` from the reset `options` until every episode ends.

    The policy acts on the live episodes only (finished ones are frozen and get a zero chunk), so
    a batch whose episodes end early costs what its live decisions cost. Returns each
    environment's episode score, the clipped actions, how many answers the policy flagged
    `invalid` (the planner's non-plans) and, with `record`, what the GRPO update needs: the
    policy's record of each decision step (its live rows), an alive mask [N, D], and over the
    live decisions in (step, env) order, the sampling-time log-probs [M, k] and, for a policy
    whose answers vary in length, which of the k tokens each answer has [M, k].
    `spread_decisions` lays such [M, k] values out as [N, D, k].
    """
    obs, _ = env.reset(seed=seed, options=options)
    generator = torch.Generator().manual_seed(seed)
    records, logprobs, alive_masks, token_masks = [], [], [], []
    invalid = 0
    while not env.done.all():
        alive = ~env.done
        out = policy.act({key: value[alive] for key, value in obs.items()}, generator=generator, greedy=greedy)
        invalid += int(np.sum(out.get("invalid", False)))
        actions = np.zeros((env.num_envs, *out["actions"].shape[1:]))
        actions[alive] = out["actions"]
        obs, *_ = env.step(actions)
        if record:
            records.append(out["record"])
            logprobs.append(out["logprobs"])
            alive_masks.append(torch.as_tensor(alive))
            token_masks.append(out.get("mask"))
    result = {"scores": env.final_scores(), "clipped_actions": env.clipped_actions, "invalid_answers": invalid}
    if record:
        result["batch"] = {"records": records, "logprobs": torch.cat(logprobs), "alive": torch.stack(alive_masks, dim=1)}
        if token_masks and token_masks[0] is not None:  # variable-length answers (the planner's text)
            result["batch"]["tokens"] = torch.cat(token_masks)
    return result


def spread_decisions(values: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Per-decision values [M, k] of the live decisions, in (step, env) order as `rollout` records
    them, laid out as [N, D, k] with zeros where an episode had ended (differentiable)."""
    out = values.new_zeros(alive.shape[1], alive.shape[0], values.shape[1])
    out[alive.T] = values
    return out.transpose(0, 1)


def summarise(scores: list[dict]) -> dict[str, float]:
    """Rates and means over episodes."""
    rows = [{**s, "success": float(s["goal"] and not (s["collision"] or s["offroad"]))} for s in scores]
    return {key: float(np.mean([r[key] for r in rows])) for key in METRICS}


def evaluate_closed_loop(policy, env: ChunkedDrivingEnv, split: str = "heldout", episodes: int = 200, seed: int = 0) -> dict:
    """Greedy closed-loop metrics on scenarios 0 .. episodes - 1 of `split` (env.num_envs must equal episodes)."""
    out = rollout(env, policy, {"split": split, "indices": range(episodes)}, seed=seed, greedy=True)
    return {**summarise(out["scores"]), "clipped_actions": out["clipped_actions"], "episodes": episodes}


HORIZONS_S = (1.0, 2.0, 3.0)


def load_action_policy(checkpoint: str | Path, chunk: int = CHUNK):
    """A saved action policy. A Qwen-VL checkpoint (it holds a processor) is the token-action VLA if
    its tokenizer has the action tokens, else the waypoint planner; anything else is a Gaussian head."""
    from mmrft.policies.action import GaussianTrajectoryPolicy

    path = Path(checkpoint)
    if any((path / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")):
        from mmrft.policies.vla import ACTION_TOKENS, TokenActionPolicy

        tokenizer = path / "tokenizer.json"
        if tokenizer.is_file() and ACTION_TOKENS[0] in tokenizer.read_text(encoding="utf-8"):
            return TokenActionPolicy(str(path), chunk)
        from mmrft.policies.planner import WaypointPlannerPolicy

        return WaypointPlannerPolicy(str(path), chunk)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"not an action-policy checkpoint (no config.json): {checkpoint}")
    return GaussianTrajectoryPolicy.from_pretrained(checkpoint)


def driving_benchmark(checkpoint: str, split: str = "heldout", episodes: int = 200, seed: int = 0) -> tuple[dict, list[dict]]:
    """The closed-loop driving benchmark: the policy drives `episodes` initial states of `split` in the
    ground truth. Metrics: success, collision, off-road, progress, reward rates, and the L2 distance
    (m) at 1/2/3 s between the executed positions and the noise-free expert's from the same states.
    Returns the eval.json report and one row per episode."""
    policy = load_action_policy(checkpoint)
    env = DrivingVectorEnv(episodes, getattr(policy, "chunk", CHUNK))
    out = rollout(env, policy, {"split": split, "seed": seed, "indices": range(episodes)}, seed=seed, greedy=True)
    expert = log_episodes(split, episodes, seed, noise=0.0)
    metrics = summarise(out["scores"])
    rows = []
    for i, score in enumerate(out["scores"]):
        driven = env.path[i, 1:, :2]
        l2 = l2_at_horizons(driven, expert["ego"][i, 1:, :2], HORIZONS_S, world.DT, average=False)
        rows.append({"index": i, **score, **{f"l2@{h:g}s": v for h, v in l2.items()}})
    for h in HORIZONS_S:
        metrics[f"l2@{h:g}s"] = float(np.mean([r[f"l2@{h:g}s"] for r in rows]))
    nonfinite = metrics.pop("nonfinite")
    failures = {"nonfinite": round(nonfinite * episodes)} if nonfinite else {}
    if out["invalid_answers"]:  # the waypoint planner's answers that were not a plan
        failures["unparseable_plans"] = out["invalid_answers"]
    report = {"benchmark": "driving", "model": str(checkpoint), "n": episodes, "metrics": metrics, "failures": failures}
    return report, rows
