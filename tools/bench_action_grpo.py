"""What a world-model GRPO step of a Qwen-VL action policy costs when the policy works on the live
episodes only, against working on every environment until the last episode ends.

    python tools/bench_action_grpo.py [--policy DIR] [--world-model DIR] [--scenarios 8] [--group 8] [--seed 0]

One batch of S x G imagined episodes (the GRPO stage's rollout): at every decision step the
policy samples once for all N environments and once for the live ones, both timed, and the live
sample drives the episodes on. Then the update's forward and backward over the recorded
decisions, all N per step against the live ones. Both variants run in the same process on the
same states. The policy is a saved Qwen-VL action policy (--policy: a token-action BC run's
checkpoint, or a planner's) or the shipped tiny base with the action tokens added; the world model a trained checkpoint or a fresh one of
the same size (the cost does not depend on its weights, the episode lengths do). Writes
bench_action_grpo.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def seconds(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    from mmrft.envs import driving as world
    from mmrft.envs.world_model import WorldModel
    from mmrft.envs.world_model_env import WorldModelVectorEnv
    from mmrft.eval.closed_loop import load_action_policy
    from mmrft.policies.vla import TokenActionPolicy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None)
    parser.add_argument("--world-model", default=None)
    parser.add_argument("--scenarios", type=int, default=8)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    policy = load_action_policy(args.policy) if args.policy else TokenActionPolicy(str(ROOT / "models" / "tiny-qwen2_5_vl-base"), chunk=5)
    model = WorldModel.from_pretrained(args.world_model) if args.world_model else WorldModel(5)
    n = args.scenarios * args.group
    env = WorldModelVectorEnv(n, model.requires_grad_(False), 5)
    scenarios = world.sample_scenarios("train", args.seed, range(args.scenarios))
    obs, _ = env.reset(seed=args.seed, options={"scenarios": scenarios, "group_size": args.group})
    generator = torch.Generator().manual_seed(args.seed)
    every, live = [], []  # records of the decisions: all N rows / the live rows
    act_all = act_live = 0.0
    while not env.done.all():
        alive = ~env.done
        out, t = seconds(lambda: policy.act(obs, generator=generator))
        every.append(out["record"])
        act_all += t
        out, t = seconds(lambda: policy.act({k: v[alive] for k, v in obs.items()}, generator=generator))
        live.append(out["record"])
        act_live += t
        actions = np.zeros((n, 5, 2))
        actions[alive] = out["actions"]
        obs, *_ = env.step(actions)

    def update(records):
        logprobs, entropy = policy.decision_logprobs(records)
        (logprobs.sum() + entropy).backward()
        policy.zero_grad()

    _, update_all = seconds(lambda: update(every))
    _, update_live = seconds(lambda: update(live))
    decisions, live_decisions = n * len(every), sum(len(record[1]) for record in live)
    result = {
        "policy": type(policy).__name__,
        "episodes": n,
        "decision_steps": len(every),
        "decisions_all": decisions,
        "decisions_live": live_decisions,
        "rollout_policy_s": {"all": act_all, "live": act_live, "ratio": act_all / act_live},
        "update_s": {"all": update_all, "live": update_live, "ratio": update_all / update_live},
        "step_s": {"all": act_all + update_all, "live": act_live + update_live, "ratio": (act_all + update_all) / (act_live + update_live)},
    }
    print(f"{type(policy).__name__}: {n} episodes, {len(every)} decision steps: {live_decisions} live decisions of {decisions} ({live_decisions / decisions:.0%})")
    print("                  all rows   live rows   all / live")
    for key in ("rollout_policy_s", "update_s", "step_s"):
        r = result[key]
        print(f"{key:<16} {r['all']:9.2f} s {r['live']:9.2f} s   {r['ratio']:6.2f}x")
    Path("bench_action_grpo.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
