"""Closed-loop evaluation of an action policy: run it to the end of every episode, then score.

Success = reached the goal in the instructed lane without collision or leaving the road. The
same function runs the ground truth and the world model, so the gap between the world model's
reward and the ground truth's on the same policy and initial states is one subtraction.
"""

from __future__ import annotations

import numpy as np
import torch

from mmrft.envs.vector import ChunkedDrivingEnv

METRICS = ("success", "collision", "offroad", "progress", "goal", "reward", "nonfinite")


def rollout(env: ChunkedDrivingEnv, policy, options: dict, seed: int = 0, greedy: bool = True, record: bool = False) -> dict:
    """Run `policy` in `env` from the reset `options` until every episode ends.

    Returns each environment's episode score, and with `record` what the GRPO update needs: the
    policy's per-decision records, the sampling-time log-probs [N, D, k] and an alive mask [N, D].
    """
    obs, _ = env.reset(seed=seed, options=options)
    generator = torch.Generator().manual_seed(seed)
    records, logprobs, alive_masks = [], [], []
    clipped = 0
    while not env.done.all():
        alive = ~env.done
        out = policy.act(obs, generator=generator, greedy=greedy)
        obs, _, _, _, info = env.step(out["actions"])
        clipped += info["clipped_actions"]
        if record:
            records.append(out["record"])
            logprobs.append(out["logprobs"])
            alive_masks.append(torch.as_tensor(alive))
    result = {"scores": env.final_scores(), "clipped_actions": clipped}
    if record:
        result["batch"] = {"records": records, "logprobs": torch.stack(logprobs, dim=1), "alive": torch.stack(alive_masks, dim=1)}
    return result


def summarise(scores: list[dict]) -> dict[str, float]:
    """Rates and means over episodes."""
    rows = [{**s, "success": float(s["goal"] and not (s["collision"] or s["offroad"]))} for s in scores]
    return {key: float(np.mean([r[key] for r in rows])) for key in METRICS}


def evaluate_closed_loop(policy, env: ChunkedDrivingEnv, split: str = "heldout", episodes: int = 200, seed: int = 0) -> dict:
    """Greedy closed-loop metrics on scenarios 0 .. episodes - 1 of `split` (env.num_envs must equal episodes)."""
    out = rollout(env, policy, {"split": split, "indices": range(episodes)}, seed=seed, greedy=True)
    return {**summarise(out["scores"]), "clipped_actions": out["clipped_actions"], "episodes": episodes}
