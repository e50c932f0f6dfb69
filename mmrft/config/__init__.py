"""Typed configs: YAML files and command-line overrides parsed into dataclasses."""

from mmrft.config.loader import ConfigError, apply_overrides, from_dict, load_config, to_dict
from mmrft.config.schema import (
    AlgorithmConfig,
    DataConfig,
    GenerationConfig,
    ModelConfig,
    OptimConfig,
    RewardConfig,
    TrainConfig,
    VideoConfig,
)

__all__ = [
    "AlgorithmConfig",
    "ConfigError",
    "DataConfig",
    "GenerationConfig",
    "ModelConfig",
    "OptimConfig",
    "RewardConfig",
    "TrainConfig",
    "VideoConfig",
    "apply_overrides",
    "from_dict",
    "load_config",
    "to_dict",
]
