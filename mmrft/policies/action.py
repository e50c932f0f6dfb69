"""Action policies for the driving environments.

`GaussianTrajectoryPolicy` is WorldRFT's trajectory Gaussianisation: an MLP reads the state and
gives the mean of the next H waypoints (offsets from the ego's position, in metres), a learned
state-independent log-std gives their scale, waypoints are sampled from that Gaussian and
`controls_for_waypoints` turns them into the action chunk that drives through them.

Every action policy has the same two methods the rollout and the GRPO stage use:
``act(obs, generator, greedy)`` returns the env's action chunk, the sampling-time log-probs
[N, k] and a ``record`` of what it saw and chose; ``decision_logprobs(records)`` recomputes the
log-probs of the recorded decisions with gradients, [M, k] over all their rows one record after
another, plus the mean entropy. Log-prob grain (k): here one per decision (the Gaussian density
of all 2H waypoint coordinates); the token policy (`mmrft.policies.vla`) has one per action token.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from mmrft.envs import driving as world
from mmrft.registry import Registry

ACTION_POLICIES = Registry("action policy")
"""Builders `fn(policy_config, chunk)` of the action policies, by the name `policy.kind` gives."""

STATE_DIM = 5 + 5 * world.NUM_OBSTACLES
SCALE = 8.0 * world.DT
"""Metres per unit of the Gaussian head's output: one step at 8 m/s."""


def state_features(obs: dict) -> np.ndarray:
    """Ego-centred features [N, STATE_DIM]: the ego's lateral position, heading, speed, its offset to the
    instructed lane and distance to the goal, then every obstacle (nearest first) as the extent of its
    box relative to the ego's centre (x min, x max, y min, y max: the clearance the ego has) and its speed."""
    ego, obstacles, lane = obs["ego"], obs["obstacles"], obs["lane"][:, 0]
    corners = _corners(obstacles) - ego[:, None, None, :2]  # [N, K, 4, 2], relative to the ego
    low, high = corners.min(axis=2), corners.max(axis=2)
    rel = np.stack([low[..., 0], high[..., 0], low[..., 1], high[..., 1], obstacles[:, :, 3]], axis=-1)
    order = np.argsort(np.where(rel[..., 1] < -10, 1e3, np.abs(rel[..., 0] + rel[..., 1]) / 2), axis=1)  # far behind go last
    rel = np.take_along_axis(rel, order[..., None], axis=1)
    rel[..., :2] = np.clip(rel[..., :2], -10, 40)
    own = np.stack([ego[:, 1] / 2, ego[:, 2] * 3, ego[:, 3] / 8, (lane - ego[:, 1]) / 2, (world.GOAL_X - ego[:, 0]) / 30], axis=-1)
    scaled = rel / np.array([20.0, 20.0, 2.0, 2.0, 2.0])
    return np.concatenate([own, scaled.reshape(len(ego), -1)], axis=1).astype(np.float32)


def _corners(obstacles: np.ndarray) -> np.ndarray:
    """Corner points [..., 4, 2] of obstacle boxes [..., 6]."""
    c, s = np.cos(obstacles[..., 2]), np.sin(obstacles[..., 2])
    half_l, half_w = obstacles[..., 4] / 2, obstacles[..., 5] / 2
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=float)
    dx = signs[:, 0] * half_l[..., None]
    dy = signs[:, 1] * half_w[..., None]
    x = obstacles[..., 0, None] + dx * c[..., None] - dy * s[..., None]
    y = obstacles[..., 1, None] + dx * s[..., None] + dy * c[..., None]
    return np.stack([x, y], axis=-1)


def controls_for_waypoints(ego: np.ndarray, waypoints: np.ndarray) -> np.ndarray:
    """The normalised (accel, steer) chunk [N, H, 2] whose bicycle steps pass through `waypoints` [N, H, 2]
    (absolute positions): the exact inverse of `world.bicycle_step` where the controls are in range."""
    x, y, yaw, v = (ego[:, i].copy() for i in range(4))
    actions = np.zeros(waypoints.shape)
    for j in range(waypoints.shape[1]):
        dx, dy = waypoints[:, j, 0] - x, waypoints[:, j, 1] - y
        new_v = np.hypot(dx, dy) / world.DT
        new_yaw = np.where(new_v > 1e-3, np.arctan2(dy, dx), yaw)
        turn = (new_yaw - yaw + np.pi) % (2 * np.pi) - np.pi
        steer = np.arctan(turn * world.WHEELBASE / np.maximum(new_v * world.DT, 1e-6))
        actions[:, j] = np.stack([(new_v - v) / world.DT / world.MAX_ACCEL, steer / world.MAX_STEER], axis=-1)
        x, y, yaw, v = waypoints[:, j, 0], waypoints[:, j, 1], new_yaw, new_v
    return actions


def waypoints_of(ego_seq: np.ndarray, ego: np.ndarray) -> np.ndarray:
    """Offsets [N, H, 2] of executed positions ego_seq [N, H, 4] from the start ego [N, 4] (BC targets)."""
    return ego_seq[..., :2] - ego[:, None, :2]


class GaussianTrajectoryPolicy(nn.Module, PyTorchModelHubMixin):
    """Waypoint offsets ~ N(mu(s), diag(sigma^2)); see the module docstring."""

    def __init__(self, chunk: int, hidden: int = 128, init_log_std: float = -1.0):
        super().__init__()
        self.chunk = chunk
        self.body = nn.Sequential(nn.Linear(STATE_DIM, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.mean = nn.Linear(hidden, chunk * 2)
        self.log_std = nn.Parameter(torch.full((chunk * 2,), init_log_std))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean [..., 2H] of the waypoint offsets (scaled: 1 = one step at 8 m/s ahead) and the std [2H]."""
        return self.mean(self.body(feats)), self.log_std.clamp(-5.0, 1.0).exp()

    def log_prob(self, feats: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Gaussian log-density of waypoint offsets [..., H, 2] (metres), one value per decision."""
        mean, std = self(feats)
        z = offsets.flatten(-2) / SCALE
        return (-0.5 * ((z - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1) - z.shape[-1] * math.log(SCALE)

    def entropy(self) -> torch.Tensor:
        std = self.log_std.clamp(-5.0, 1.0).exp()
        return (0.5 + 0.5 * math.log(2 * math.pi) + std.log()).sum() + 2 * self.chunk * math.log(SCALE)

    @torch.no_grad()
    def act(self, obs: dict, generator: torch.Generator | None = None, greedy: bool = False) -> dict:
        """Sample (or take the mean of) waypoints; the action chunk drives through them."""
        feats = torch.as_tensor(state_features(obs))
        mean, std = self(feats)
        z = mean if greedy else mean + std * torch.randn(mean.shape, generator=generator)
        offsets = (z * SCALE).reshape(-1, self.chunk, 2)
        ego = obs["ego"]
        actions = controls_for_waypoints(ego, ego[:, None, :2] + offsets.double().numpy())
        return {"actions": actions, "logprobs": self.log_prob(feats, offsets)[:, None], "record": (feats, offsets)}

    def imitation_logprobs(self, obs: dict, actions: np.ndarray, offsets: np.ndarray) -> torch.Tensor:
        """Log-probs [N, 1] of the expert's next waypoints (offsets [N, H, 2]) for behaviour cloning."""
        return self.log_prob(torch.as_tensor(state_features(obs)), torch.as_tensor(offsets, dtype=torch.float32))[:, None]

    def decision_logprobs(self, records: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs [M, 1] of the recorded decisions, the records' rows one after another, and the policy's entropy."""
        feats = torch.cat([f for f, _ in records])
        offsets = torch.cat([o for _, o in records])
        return self.log_prob(feats, offsets)[..., None], self.entropy()



@ACTION_POLICIES.register("gaussian")
def build_gaussian(policy, chunk: int) -> GaussianTrajectoryPolicy:
    """A new head, or the one saved at `policy.init`."""
    if policy.init:
        return GaussianTrajectoryPolicy.from_pretrained(policy.init)
    return GaussianTrajectoryPolicy(chunk, policy.hidden, policy.init_log_std)


@ACTION_POLICIES.register("tokens")
def build_tokens(policy, chunk: int):
    """The token-action VLA from `policy.init` (a BC run's checkpoint) or the base `policy.model`."""
    from mmrft.policies.vla import TokenActionPolicy

    return TokenActionPolicy(policy.init or policy.model, chunk, policy.temperature)


@ACTION_POLICIES.register("planner")
def build_planner(policy, chunk: int):
    """The waypoint planner from `policy.init` (an SFT run's checkpoint) or the base `policy.model`."""
    from mmrft.policies.planner import WaypointPlannerPolicy

    return WaypointPlannerPolicy(policy.init or policy.model, chunk, temperature=policy.temperature)
