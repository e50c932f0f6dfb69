"""Typed configs: YAML files and command-line overrides parsed into dataclasses."""

from pathlib import Path

import yaml

from mmrft.config.driving import DRIVING_STAGES, DrivingConfig
from mmrft.config.loader import (
    ConfigError,
    apply_overrides,
    from_dict,
    is_override,
    load_config,
    parse_override,
    to_dict,
)
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



def load_train_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig | DrivingConfig:
    """The config of any `mmrft train` stage: `DrivingConfig` for the driving stages, else `TrainConfig`."""
    stage = None
    if Path(path).is_file():
        try:
            data = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError:
            data = None  # load_config below reports it, naming the file
        stage = data.get("stage") if isinstance(data, dict) else None
    for text in overrides:
        key, value = parse_override(text)
        if key == ["stage"]:
            stage = value
    return load_config(DrivingConfig if stage in DRIVING_STAGES else TrainConfig, path, overrides)


__all__ = [
    "DRIVING_STAGES",
    "DrivingConfig",
    "load_train_config",
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
    "is_override",
    "from_dict",
    "load_config",
    "to_dict",
]
