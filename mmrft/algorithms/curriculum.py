"""Curricula: which difficulty the next batch is drawn at. Pure state machines over numbers;
the training stream (mmrft.training.stream.CurriculumStream) turns a target into samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmrft.registry import Registry

CURRICULA = Registry("curriculum")


@CURRICULA.register("adarft")
@dataclass
class AdaRFT:
    """AdaRFT (Shi et al. 2025, "Efficient RL Finetuning via Adaptive Curriculum Learning").

    After each step with mean task reward R the target difficulty moves as
        T <- clip(T + eta * tanh(alpha * (R - beta)), d_min, d_max)
    so batches get harder while the policy succeeds more often than ``beta`` and easier while
    it fails. The next batch holds the samples whose difficulty is closest to T.
    """

    d_min: float
    d_max: float
    target: float | None = None
    """Start of T; unset: d_min."""
    eta: float = 0.5
    alpha: float = 2.0
    beta: float = 0.5

    def __post_init__(self) -> None:
        if self.target is None:
            self.target = self.d_min

    def observe(self, step: int, reward: float) -> None:
        if math.isnan(reward):
            return
        moved = self.target + self.eta * math.tanh(self.alpha * (reward - self.beta))
        self.target = min(max(moved, self.d_min), self.d_max)

    def window(self, step: int) -> tuple[float, float]:
        """Draw at exactly the target (the stream widens to the nearest difficulties present)."""
        return (self.target, self.target)

    def state_dict(self) -> dict:
        return {"target": self.target}

    def load_state_dict(self, state: dict) -> None:
        self.target = float(state["target"])


@CURRICULA.register("staged")
@dataclass
class Staged:
    """Curr-ReFT-style staged difficulty (Deng et al. 2025): stage k, active until step
    ``until[k]``, draws samples with difficulty at most ``max_difficulty[k]``; the last stage
    runs to the end of training."""

    d_min: float
    d_max: float
    max_difficulty: tuple[float, ...] = ()
    until: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.max_difficulty) != len(self.until) + 1:
            raise ValueError(
                "staged curriculum: give one more max_difficulty than until steps "
                f"(got {len(self.max_difficulty)} and {len(self.until)})"
            )

    def observe(self, step: int, reward: float) -> None:
        pass

    def window(self, step: int) -> tuple[float, float]:
        stage = sum(step >= u for u in self.until)
        return (self.d_min, self.max_difficulty[stage])

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
