"""The typed config of the driving stages of ``mmrft train``: world model, behaviour cloning, GRPO.

A YAML whose ``stage`` is one of `DRIVING_STAGES` is read into `DrivingConfig` instead of the
vision-language `TrainConfig`; everything else (overrides, unknown-key errors, run directory)
works the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmrft.config.loader import ConfigError
from mmrft.config.paths import resolve_data_path

DRIVING_STAGES = ("world_model", "action_bc", "action_grpo")


@dataclass
class DrivingDataConfig:
    train: str = "data/driving/train.npz"
    """Logged expert episodes for training (generated with the settings below if missing)."""
    heldout: str = "data/driving/heldout.npz"
    """Logged episodes on held-out initial states (world-model horizon error, BC held-out loss)."""
    train_episodes: int = 600
    """Episodes to log into `train` when it is generated."""
    heldout_episodes: int = 200
    """Episodes to log into `heldout` when it is generated."""
    expert_noise: float = 0.1
    """Std of the Gaussian noise on the expert's normalised actions."""
    seed: int = 0
    """Seed of the scenarios and the expert's noise."""
    root: str | None = None
    """Directory that relative ``train`` and ``heldout`` paths resolve against. Unset: the cache
    root, ``$MMRFT_CACHE`` (default ~/.cache/mmrft), as for all data mmrft generates when missing;
    ``root: .`` keeps them in the current directory."""

    def __post_init__(self) -> None:
        self.train = resolve_data_path(self.train, self.root, generated=True)
        self.heldout = resolve_data_path(self.heldout, self.root, generated=True)


@dataclass
class WorldModelConfig:
    path: str | None = None
    """A trained world model (a checkpoint directory of a world_model run); the action_grpo stage trains in it."""
    members: int = 5
    """Ensemble size."""
    hidden: int = 128
    """Hidden width of each member's MLP."""


@dataclass
class ActionPolicyConfig:
    kind: Literal["gaussian", "tokens", "planner"] = "gaussian"
    """gaussian: WorldRFT-style Gaussian trajectory head over waypoints (mmrft.policies.action);
    tokens: a Qwen-VL model reading the frame and writing OpenVLA-style action tokens (mmrft.policies.vla);
    planner: a Qwen-VL model writing its next waypoints as text (mmrft.policies.planner; GRPO only,
    from an SFT checkpoint of configs/driving_sft_planner.yaml)."""
    init: str | None = None
    """Start from this checkpoint directory (the action_grpo stage starts from a BC run's)."""
    model: str = "models/tiny-qwen2_5_vl-base"
    """The tokens policy's Qwen-VL model when there is no `init` (a local directory, hub id or tiny: spec)."""
    hidden: int = 128
    """Hidden width."""
    init_log_std: float = -1.0
    """Initial log-std of the waypoint Gaussian (in units of one step at 8 m/s)."""
    temperature: float = 1.0
    """Sampling temperature of a Qwen-VL policy's GRPO rollouts (tokens, planner), as TRL's
    ``temperature``: tokens are drawn from, and their log-probs and entropy taken under,
    softmax(logits / temperature). Greedy evaluation does not use it; the Gaussian head has none
    (its learned scale is its spread)."""


@dataclass
class ActionGRPOConfig:
    scenarios_per_step: int = 16
    """Initial states per optimizer step; each is rolled out group_size times."""
    group_size: int = 8
    """Rollouts per initial state (G): the group of the group-relative advantage."""
    num_iterations: int = 2
    """Updates on each batch of rollouts (ratios against the policy that collected them)."""
    safety_penalty: float = 0.0
    """Subtracted from the `driving_rollout` reward of a rollout that collides or leaves the road
    (WorldRFT's collision-aware reward). The verifier already gives such a rollout 0; the penalty
    makes it worse than driving slowly. Penalising collisions alone teaches the policy to escape
    them by leaving the road (measured)."""
    entropy_coef: float = 0.0
    """Entropy bonus: the loss minus this times the policy's entropy (keeps exploration from collapsing)."""
    advantage: str = "grpo"
    """Advantage estimator (mmrft.algorithms.advantages)."""
    loss_aggregation: str = "token_mean"
    """Loss aggregation over decisions (mmrft.algorithms.losses)."""
    epsilon_low: float = 0.2
    """Lower clip range of the ratio."""
    epsilon_high: float = 0.2
    """Upper clip range of the ratio."""
    beta: float = 0.0
    """KL coefficient to the starting (BC) policy; the reference is built only when > 0."""
    kl_estimator: str = "k3"
    """KL estimator (k1, k2, k3)."""


@dataclass
class DrivingConfig:
    stage: Literal["world_model", "action_bc", "action_grpo"] = "world_model"
    """world_model: fit the ensemble to logged transitions; action_bc: behaviour cloning on the
    expert; action_grpo: GRPO of the action policy inside the world model."""
    data: DrivingDataConfig = field(default_factory=DrivingDataConfig)
    """Logged episodes."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """The learned simulator."""
    policy: ActionPolicyConfig = field(default_factory=ActionPolicyConfig)
    """The action policy (action_bc, action_grpo)."""
    grpo: ActionGRPOConfig = field(default_factory=ActionGRPOConfig)
    """GRPO in the world model (action_grpo)."""
    chunk: int = 5
    """Simulator steps per action chunk."""
    lr: float = 1.0e-3
    """Adam learning rate."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0 disables)."""
    batch_size: int = 256
    """Transitions per minibatch (world_model, action_bc)."""
    max_steps: int = 3000
    """Optimizer steps."""
    seed: int = 0
    """Seed of initialisation, minibatches, scenarios and sampling."""
    output_dir: str = "runs/driving"
    """Run directory."""
    eval_every: int = 500
    """Evaluate every N steps (0: only at the start and the end)."""
    eval_episodes: int = 200
    """Held-out initial states for closed-loop evaluation in the ground truth."""
    save_every: int = 500
    """Checkpoint every N steps (and at the end)."""
    keep_last: int = 2
    """Checkpoints kept."""
    log_every: int = 10
    """Write metrics every N steps."""

    def validate(self) -> None:
        if self.stage == "action_grpo" and not self.world_model.path:
            raise ConfigError("world_model.path: the action_grpo stage trains inside a world model; name a world_model run's checkpoint")
        if self.grpo.group_size < 2:
            raise ConfigError("grpo.group_size: GRPO needs at least 2 rollouts per initial state")
        if self.policy.temperature != 1.0 and (self.stage != "action_grpo" or self.policy.kind == "gaussian"):
            raise ConfigError("policy.temperature: a rollout setting of the Qwen-VL policies (tokens, planner) in the action_grpo stage")
        if self.policy.temperature <= 0:
            raise ConfigError(f"policy.temperature must be > 0 (got {self.policy.temperature}); evaluation is greedy already")
        if self.chunk < 1 or self.eval_episodes < 1:
            raise ConfigError("chunk and eval_episodes must be at least 1")
