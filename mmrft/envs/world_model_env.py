"""The world-model environment: the driving vector environment with a learned model in place of physics.

Same interface, scenarios, termination and verifiers as the ground truth (`ChunkedDrivingEnv`);
only `advance` differs: the ensemble predicts the chunk in one batched torch forward. Each chunk,
every group draws one ensemble member (the model noise) from the generator seeded at reset, and
all G rollouts of the group use it, so they differ only by their actions. A non-finite prediction
ends that episode with the `nonfinite` flag instead of crashing the run.
"""

from __future__ import annotations

import numpy as np

from mmrft.envs.vector import CHUNK, ChunkedDrivingEnv
from mmrft.envs.world_model import WorldModel


class WorldModelVectorEnv(ChunkedDrivingEnv):
    def __init__(self, num_envs: int, model: WorldModel, chunk: int = CHUNK, frames: bool = False, sample_members: bool = True):
        if model.chunk != chunk:
            raise ValueError(f"world model predicts chunks of {model.chunk} steps; the environment steps {chunk}")
        super().__init__(num_envs, chunk, frames)
        self.model = model.eval()
        self.sample_members = sample_members
        self.group = np.arange(num_envs)

    def on_reset(self, scenarios, group_size: int) -> None:
        self.group = np.arange(self.num_envs) // group_size
        self._noise = np.random.default_rng(self._np_random.integers(2**63))

    def advance(self, ego, obstacles, actions):
        rows = np.arange(self.num_envs)
        previous = self.path[rows, np.maximum(self.t - 1, 0)]
        member = None
        if self.sample_members:
            member = self._noise.integers(0, self.model.members, self.group.max() + 1)[self.group]
        ego_seq, obstacle_seq, self.last_spread = self.model.predict(ego, previous, obstacles, actions, member)
        return ego_seq, obstacle_seq
