"""A learned driving world model: an ensemble of MLPs predicting an action chunk's next states.

Input (translation-invariant, so the model never sees absolute positions): the ego's heading as
(cos, sin), its speed, its last step's change (dx, dy, dyaw, dv) as history, every obstacle's
heading and speed, and the action chunk [H, 2]. Output: for each of the H steps, the ego's change
(dx, dy, dyaw, dv) and every obstacle's (dx, dy); states are their running sums. Obstacle sizes,
headings and speeds are carried over unchanged (they move at constant velocity in the data).

Frames are not predicted: a policy that reads pixels gets the frame rendered from the predicted
state (`mmrft.envs.render`), which keeps frames exact given the state and puts all model error
where it can be measured, in the state.

The ensemble's members differ in initialisation and minibatch order; their disagreement (std of
the predicted ego position) estimates the model's own uncertainty. The world-model environment
draws one member per group per chunk, so the G rollouts of a group see the same model noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from mmrft.envs import driving as world


def features(ego: np.ndarray, previous: np.ndarray, obstacles: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Model input [N, D] from ego [N, 4], the previous ego state [N, 4], obstacles [N, K, 6], actions [N, H, 2]."""
    history = ego - previous
    return np.concatenate(
        [
            np.cos(ego[:, 2:3]),
            np.sin(ego[:, 2:3]),
            ego[:, 3:4],
            history,
            np.cos(obstacles[:, :, 2]),
            np.sin(obstacles[:, :, 2]),
            obstacles[:, :, 3],
            actions.reshape(len(ego), -1),
        ],
        axis=1,
    )


def targets(ego_seq: np.ndarray, start: np.ndarray, obstacle_seq: np.ndarray, obstacle_start: np.ndarray) -> np.ndarray:
    """Per-step changes [N, H * (4 + 2K)] of ego [N, H, 4] and obstacle positions [N, H, K, 2] from their starts."""
    ego_all = np.concatenate([start[:, None], ego_seq], axis=1)
    obs_all = np.concatenate([obstacle_start[:, None, :, :2], obstacle_seq[..., :2]], axis=1)
    n, h = ego_seq.shape[:2]
    return np.concatenate([np.diff(ego_all, axis=1), np.diff(obs_all, axis=1).reshape(n, h, -1)], axis=2).reshape(n, -1)


class EnsembleLinear(nn.Module):
    """E independent linear layers applied to [E, B, in] at once."""

    def __init__(self, members: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(members, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class WorldModel(nn.Module, PyTorchModelHubMixin):
    """The ensemble, with input and output normalisation stored as buffers."""

    def __init__(self, chunk: int, num_obstacles: int = world.NUM_OBSTACLES, members: int = 5, hidden: int = 128):
        super().__init__()
        self.chunk, self.num_obstacles, self.members = chunk, num_obstacles, members
        d_in = 7 + 3 * num_obstacles + 2 * chunk
        d_out = chunk * (4 + 2 * num_obstacles)
        self.net = nn.Sequential(
            EnsembleLinear(members, d_in, hidden), nn.SiLU(), EnsembleLinear(members, hidden, hidden), nn.SiLU(),
            EnsembleLinear(members, hidden, d_out),
        )  # fmt: skip
        for name, size in (("in_mean", d_in), ("in_std", d_in), ("out_mean", d_out), ("out_std", d_out)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))

    def set_normalisation(self, x: np.ndarray, y: np.ndarray) -> None:
        for name, data in (("in", x), ("out", y)):
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(data.mean(0)))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(data.std(0) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised predictions [E, B, d_out] of normalised targets for inputs x [B, d_in] (or [E, B, d_in])."""
        z = (x - self.in_mean) / self.in_std
        if z.dim() == 2:
            z = z.expand(self.members, *z.shape)
        return self.net(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error of every member on normalised targets; x, y are [E, B, ...] (a batch per member)."""
        return ((self(x) - (y - self.out_mean) / self.out_std) ** 2).mean()

    @torch.no_grad()
    def predict(
        self, ego: np.ndarray, previous: np.ndarray, obstacles: np.ndarray, actions: np.ndarray, member: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Next states of a chunk: ego [N, H, 4], obstacles [N, H, K, 6], and the ensemble's std of the
        ego position [N, H]. `member` [N] picks each row's member (default: the ensemble mean)."""
        x = torch.as_tensor(features(ego, previous, obstacles, actions), dtype=torch.float32)
        deltas = self(x) * self.out_std + self.out_mean  # [E, N, d_out]
        n, h, k = len(ego), self.chunk, self.num_obstacles
        deltas = deltas.reshape(self.members, n, h, 4 + 2 * k).double().numpy()
        spread = np.cumsum(deltas[..., :2], axis=2).std(axis=0)
        chosen = deltas.mean(0) if member is None else deltas[member, np.arange(n)]
        ego_seq = ego[:, None] + np.cumsum(chosen[..., :4], axis=1)
        obstacle_seq = np.repeat(obstacles[:, None], h, axis=1)
        obstacle_seq[..., :2] += np.cumsum(chosen[..., 4:].reshape(n, h, k, 2), axis=1)
        return ego_seq, obstacle_seq, np.linalg.norm(spread, axis=-1)


def transitions(episodes: dict[str, np.ndarray], chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of every chunk start t with t + chunk <= steps in logged episodes."""
    xs, ys = [], []
    for t in range(world.MAX_STEPS - chunk + 1):
        rows = np.flatnonzero(episodes["steps"] >= t + chunk)
        if not len(rows):
            break
        ego, obstacles = episodes["ego"][rows], episodes["obstacles"][rows]
        previous = ego[:, max(t - 1, 0)] if t else ego[:, 0]
        xs.append(features(ego[:, t], previous, obstacles[:, t], episodes["actions"][rows, t : t + chunk]))
        ys.append(targets(ego[:, t + 1 : t + 1 + chunk], ego[:, t], obstacles[:, t + 1 : t + 1 + chunk], obstacles[:, t]))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)


def horizon_errors(model: WorldModel, episodes: dict[str, np.ndarray], chunks: int = 6) -> dict[str, list[float]]:
    """Open-loop error against horizon: from each episode's start, roll the logged actions through
    the ensemble mean chunk by chunk; mean ego position error (m) and ensemble std after each chunk,
    over episodes still running at that time."""
    h = model.chunk
    ego, obstacles = episodes["ego"][:, 0].copy(), episodes["obstacles"][:, 0].copy()
    previous = ego.copy()
    errors, spreads = [], []
    for c in range(chunks):
        t = c * h
        rows = episodes["steps"] >= t + h
        if not rows.any():
            break
        ego_seq, obstacle_seq, spread = model.predict(ego, previous, obstacles, episodes["actions"][:, t : t + h])
        truth = episodes["ego"][:, t + h, :2]
        errors.append(float(np.linalg.norm(ego_seq[rows, -1, :2] - truth[rows], axis=-1).mean()))
        spreads.append(float(spread[rows, -1].mean()))
        previous, ego, obstacles = ego_seq[:, -2], ego_seq[:, -1], obstacle_seq[:, -1]
    return {"seconds": [round((c + 1) * h * world.DT, 2) for c in range(len(errors))], "position_error_m": errors, "ensemble_std_m": spreads}
