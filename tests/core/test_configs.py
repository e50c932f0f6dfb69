"""Configs: every shipped YAML validates, errors name the key, overrides apply, every field is documented."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mmrft.config import (
    DRIVING_STAGES,
    ConfigError,
    DrivingConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    load_train_config,
    schema,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("accelerate"))


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no training YAML"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_validates(path):
    config = load_train_config(path)
    assert isinstance(config, DrivingConfig if config.stage in DRIVING_STAGES else TrainConfig)
    assert config.max_steps > 0 and config.batch_size > 0
    if config.stage == "grpo":
        assert config.rewards and config.generation.num_generations >= 2


def _base(tmp_path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("stage: sft\ndata:\n  train: t.jsonl\noptim:\n  lr: 1.0e-4\n")
    return path


def test_unknown_key_names_it_suggests_and_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, _base(tmp_path), ["optim.lrr=1"])
    message = str(info.value)
    assert "\n" not in message
    assert "'optim.lrr'" in message
    assert "did you mean 'lr'" in message
    valid = sorted(f.name for f in dataclasses.fields(schema.OptimConfig))
    assert all(name in message for name in valid), message


def test_unknown_top_level_key_in_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stage: sft\ndata: {train: t.jsonl}\nbatchsize: 4\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'batchsize' \(did you mean 'batch_size'\?\)"):
        load_config(TrainConfig, path)


@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.lr=abc", "optim.lr"),
        ("batch_size=2.5", "batch_size"),
        ("batch_size=true", "batch_size"),
        ("progress_bar=3", "progress_bar"),
        ("stage=ppo", "stage"),
        ("model=abc", "model"),
        ("optim.betas=0.9", "optim.betas"),
        ("rewards=[{name: box_iou, wieght: 2}]", "rewards[0].wieght"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, _base(tmp_path), [override])
    message = str(info.value)
    assert key in message and "\n" not in message, message


def test_overrides_are_applied(tmp_path):
    config = load_config(
        TrainConfig,
        _base(tmp_path),
        [
            "optim.lr=1e-5",  # YAML 1.1 reads this as a string; it is still a float
            "optim.betas=[0.8, 0.95]",
            "generation.num_generations=6",
            "algorithm.beta=0.04",
            "model.name_or_path=tiny:qwen3_vl",
            "max_minutes=1.5",
            "report_to=[]",
            "rewards=[{name: box_iou}, {name: format, weight: 0.5}]",
            "batch_size=4",
        ],
    )
    assert config.optim.lr == 1e-5 and isinstance(config.optim.lr, float)
    assert config.optim.betas == [0.8, 0.95]
    assert config.generation.num_generations == 6
    assert config.algorithm.beta == 0.04
    assert config.model.name_or_path == "tiny:qwen3_vl"
    assert config.max_minutes == 1.5
    assert [(r.name, r.weight) for r in config.rewards] == [("box_iou", 1.0), ("format", 0.5)]
    assert config.batch_size == 4
    # Untouched values keep the file's / the defaults.
    assert config.stage == "sft" and config.optim.weight_decay == 0.0 and config.data.train == "t.jsonl"


def test_apply_overrides_builds_nested_sections():
    data = apply_overrides({"a": {"x": 1}}, ["a.b.c=2", "a.x=null", "d=hello"])
    assert data == {"a": {"x": None, "b": {"c": 2}}, "d": "hello"}
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["justakey"])


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="rewards"):
        from_dict(TrainConfig, {"stage": "grpo", "data": {"train": "t.jsonl"}})
    with pytest.raises(ConfigError, match="optim.grad_accum"):
        from_dict(TrainConfig, {"stage": "sft", "data": {"train": "t.jsonl"}, "batch_size": 3, "optim": {"grad_accum": 2}})
    with pytest.raises(ConfigError, match="data.train"):
        from_dict(TrainConfig, {"stage": "sft"})


@pytest.mark.parametrize(
    "settings",
    [
        {"stage": "action_bc", "policy": {"kind": "tokens", "temperature": 0.5}},  # a rollout setting
        {"stage": "action_grpo", "policy": {"kind": "gaussian", "temperature": 0.5}},  # no temperature
        {"stage": "action_grpo", "policy": {"kind": "tokens", "temperature": 0.0}},
    ],
)
def test_driving_policy_temperature_is_checked(settings):
    with pytest.raises(ConfigError, match="policy.temperature"):
        from_dict(DrivingConfig, {**settings, "world_model": {"path": "wm"}})
    from_dict(DrivingConfig, {"stage": "action_grpo", "policy": {"kind": "tokens", "temperature": 0.5}, "world_model": {"path": "wm"}})


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(TrainConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: [sft\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(TrainConfig, bad)


def test_every_schema_field_has_a_docstring():
    tree = ast.parse(Path(schema.__file__).read_text())
    classes = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(getattr(d, "id", None) == "dataclass" or getattr(getattr(d, "func", None), "id", None) == "dataclass"
                for d in node.decorator_list)
    ]
    assert {c.name for c in classes} >= {
        "ModelConfig", "DataConfig", "GenerationConfig", "RewardConfig", "AlgorithmConfig", "OptimConfig", "TrainConfig"
    }
    undocumented = []
    for cls in classes:
        body = cls.body
        fields = 0
        for i, node in enumerate(body):
            if not isinstance(node, ast.AnnAssign):
                continue
            fields += 1
            doc = body[i + 1] if i + 1 < len(body) else None
            if not (
                isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
                and doc.value.value.strip()
            ):
                undocumented.append(f"{cls.name}.{node.target.id}")
        assert fields == len(dataclasses.fields(getattr(schema, cls.name))), cls.name
    assert not undocumented, f"fields without an attribute docstring: {undocumented}"
