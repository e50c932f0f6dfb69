"""Where a run writes: its output directory and the cache root (synthetic data, tiny models), never
the current directory unless a config says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrft.config import DrivingConfig, TrainConfig, from_dict, load_config
from mmrft.config.paths import cache_root
from mmrft.training import GRPOTrainer

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = {"task": "grounding", "train": 4, "heldout": 2, "seed": 0}


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


def synthetic_config(output_dir, **data) -> TrainConfig:
    return from_dict(
        TrainConfig,
        {
            "stage": "grpo",
            "model": {"name_or_path": "tiny:qwen2_5_vl"},
            "data": {
                "train": "data/shapes_grounding/train.jsonl",
                "heldout": "data/shapes_grounding/heldout.jsonl",
                "synthetic": SYNTHETIC,
                **data,
            },
            "generation": {"num_generations": 2, "max_new_tokens": 2},
            "rewards": [{"name": "box_iou"}],
            "batch_size": 2,
            "max_steps": 1,
            "eval_before_after": False,
            "progress_bar": False,
            "output_dir": str(output_dir),
        },
    )


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty current directory, a cache root ($MMRFT_CACHE) and an output directory, apart."""
    cwd, cache, out = tmp_path / "cwd", tmp_path / "cache", tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("MMRFT_CACHE", str(cache))
    return cwd, cache, out


def test_a_run_writes_only_in_its_output_directory_and_the_cache_root(places):
    cwd, cache, out = places
    GRPOTrainer(synthetic_config(out)).train()
    assert files_under(cwd) == set()
    data = cache / "data" / "shapes_grounding"
    assert {"train.jsonl", "heldout.jsonl", "synthetic.json"} <= files_under(data)
    assert (cache / "models" / "tiny-qwen2_5_vl-v1" / "config.json").is_file()
    assert files_under(cache) == {f"data/shapes_grounding/{f}" for f in files_under(data)} | {
        f"models/tiny-qwen2_5_vl-v1/{f}" for f in files_under(cache / "models" / "tiny-qwen2_5_vl-v1")
    }
    assert (out / "metrics.jsonl").is_file()


@pytest.mark.parametrize("root", ["mine", "."])
def test_data_root_moves_synthetic_data(places, root):
    cwd, cache, out = places
    config = synthetic_config(out, root=root)
    where = (cwd / root / "data" / "shapes_grounding").resolve()
    assert Path(config.data.train) == where / "train.jsonl" and Path(config.data.heldout) == where / "heldout.jsonl"
    GRPOTrainer(config)
    assert {"train.jsonl", "heldout.jsonl", "synthetic.json"} <= files_under(where)
    assert not (cache / "data").exists()


def test_own_data_is_read_relative_to_the_current_directory(places, grounding_data):
    cwd, _, _ = places
    config = from_dict(TrainConfig, {"data": {"train": "train.jsonl"}, "rewards": [{"name": "box_iou"}]})
    assert config.data.train == "train.jsonl"  # nothing is generated: the user's path stays theirs
    assert Path(config.data.train).resolve() == cwd / "train.jsonl"
    rooted = from_dict(TrainConfig, {"data": {"train": "train.jsonl", "root": str(grounding_data.dir)}, "rewards": [{"name": "box_iou"}]})
    assert Path(rooted.data.train) == grounding_data.train
    hub = from_dict(TrainConfig, {"data": {"train": "hf:org/name:train", "root": "/y"}, "rewards": [{"name": "box_iou"}]})
    assert hub.data.train == "hf:org/name:train"  # a hub reference is not a path


def test_cache_root_defaults_to_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("MMRFT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "mmrft"
    config = load_config(TrainConfig, ROOT / "configs" / "demo_grounding_grpo.yaml")
    assert config.data.train == str(tmp_path / ".cache" / "mmrft" / "data" / "shapes_grounding" / "train.jsonl")


def test_driving_episodes_live_under_the_cache_root(places):
    _, cache, _ = places
    config = from_dict(DrivingConfig, {"stage": "world_model"})
    assert config.data.train == str(cache / "data" / "driving" / "train.npz")
    assert config.data.heldout == str(cache / "data" / "driving" / "heldout.npz")
    absolute = from_dict(DrivingConfig, {"stage": "world_model", "data": {"train": "/x/train.npz", "root": "/y"}})
    assert absolute.data.train == "/x/train.npz" and absolute.data.heldout == "/y/data/driving/heldout.npz"
