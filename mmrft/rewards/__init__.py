"""Reward functions: pure verifiers with TRL's `fn(completions, **columns) -> list[float | None]` convention.

Importing this package registers the built-in rewards; `mmrft rewards list` shows them all.
Call user rewards through `mmrft.rewards.safety.call_reward` so a failing one cannot stop training.
"""

from mmrft.rewards import (  # noqa: F401  (importing registers the built-ins)
    answers,
    detection,
    formatting,
    grounding,
    math_answer,
    temporal,
    trajectory,
    vqa,
)
from mmrft.rewards.registry import (
    ComponentsFn,
    RewardFn,
    RewardSpec,
    UnknownRewardError,
    get_reward,
    list_rewards,
    register_reward,
    reward_spec,
)
from mmrft.rewards.safety import RewardError, call_components, call_reward

__all__ = [
    "ComponentsFn",
    "RewardError",
    "RewardFn",
    "RewardSpec",
    "UnknownRewardError",
    "call_components",
    "call_reward",
    "get_reward",
    "list_rewards",
    "register_reward",
    "reward_spec",
]
