"""Which groups a batch trains on: the zero-variance filter behind DAPO's dynamic sampling."""

from __future__ import annotations

import torch

from mmrft.algorithms.advantages import groups, is_informative


def informative_groups(task_rewards: torch.Tensor, group_ids: torch.Tensor) -> list[int]:
    """Ids of the groups whose task reward varies (at least two valid, differing members).

    A group whose completions all earn the same task reward has zero advantage under any
    group baseline and only adds noise and dilution ("Vanishing Gradients in Reinforcement Finetuning",
    Razin et al. 2024; DAPO's dynamic sampling, Yu et al. 2025). Pass the task reward alone:
    a format reward that varies inside an all-wrong group would otherwise keep it.
    NaN rewards are "not applicable" and do not count.
    """
    return [g for g, rows in groups(task_rewards, group_ids) if is_informative(task_rewards[rows])]
