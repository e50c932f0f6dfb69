"""Reward functions: pure verifiers with TRL's `fn(completions, **columns) -> list[float | None]` convention.

Importing this package registers the built-in rewards (format, format_nothink, box_iou,
classification, count).
"""

from mmrft.rewards import answers, formatting, grounding  # noqa: F401  (registers the built-ins)
from mmrft.rewards.registry import (
    RewardFn,
    RewardSpec,
    UnknownRewardError,
    get_reward,
    list_rewards,
    register_reward,
    reward_spec,
)

__all__ = [
    "RewardFn",
    "RewardSpec",
    "UnknownRewardError",
    "get_reward",
    "list_rewards",
    "register_reward",
    "reward_spec",
]
