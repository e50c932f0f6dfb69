"""Shared fixtures: tiny Qwen-VL models per architecture and a small synthetic grounding set.

Everything is built locally in temporary directories; nothing touches the network
(``HF_HUB_OFFLINE=1`` is set before transformers or huggingface_hub are imported, and
``MMRFT_CACHE`` points ``tiny:<arch>`` specs at a session temp dir).
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

torch.set_num_threads(1)

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Point MMRFT_CACHE at a session temp dir so ``tiny:`` specs never touch ~/.cache."""
    old = os.environ.get("MMRFT_CACHE")
    os.environ["MMRFT_CACHE"] = str(tmp_path_factory.mktemp("mmrft-cache"))
    yield
    if old is None:
        os.environ.pop("MMRFT_CACHE", None)
    else:
        os.environ["MMRFT_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(arch) -> Path``: a tiny random model of ``arch`` (seed 0), built once per session."""
    from mmrft.policies.tiny import build_tiny_model

    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_model(arch, tmp_path_factory.mktemp(f"tiny-{arch}") / "model", seed=0)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def grounding_data(tmp_path_factory):
    """Synthetic shape grounding: ``.train`` (16 samples) and ``.heldout`` (8) JSONL paths in ``.dir``."""
    from mmrft.data.synthetic.shapes import write_split

    root = tmp_path_factory.mktemp("shapes_grounding")
    train = write_split("grounding", "train", root, n=16, seed=0)
    heldout = write_split("grounding", "heldout", root, n=8, seed=0)
    return SimpleNamespace(dir=root, train=train, heldout=heldout)


@pytest.fixture(scope="session")
def load_tiny_policy(tiny_model_dir):
    """``load_tiny_policy(arch, coord_convention="input_pixels") -> QwenVLPolicy`` (a fresh model each call)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmrft.policies.qwen_vl import QwenVLPolicy

    def load(arch: str, coord_convention: str = "input_pixels") -> QwenVLPolicy:
        path = tiny_model_dir(arch)
        model = AutoModelForImageTextToText.from_pretrained(path)
        processor = AutoProcessor.from_pretrained(path)
        return QwenVLPolicy(model, processor, coord_convention=coord_convention)

    return load


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def length_reward(tmp_path_factory) -> str:
    """A user reward by path (``/abs/file.py:fn``) scoring a completion by its length in characters.

    A random tiny model's completions differ in length, so every group has non-zero advantages.
    """
    path = tmp_path_factory.mktemp("user_rewards") / "length_reward.py"
    path.write_text(
        "def length(completions, **columns):\n"
        '    """Length of the completion in characters."""\n'
        "    return [float(len(c)) for c in completions]\n"
    )
    return f"{path}:length"


@pytest.fixture(scope="session")
def make_train_config(tiny_model_dir, grounding_data):
    """``make_train_config(output_dir, arch="qwen2_5_vl", **overrides) -> TrainConfig``: a tiny, fast run.

    Defaults: GRPO, batch 2, G 4, 8 new tokens, box_iou + format_nothink, lr 1e-3, no eval,
    no progress bar. ``overrides`` are nested dicts merged into the config dict.
    """
    from mmrft.config import TrainConfig, from_dict

    def make(output_dir, arch: str = "qwen2_5_vl", **overrides):
        base = {
            "stage": "grpo",
            "model": {"name_or_path": str(tiny_model_dir(arch))},
            "data": {"train": str(grounding_data.train), "heldout": str(grounding_data.heldout)},
            "generation": {"num_generations": 4, "max_new_tokens": 8},
            "rewards": [{"name": "box_iou"}, {"name": "format_nothink"}],
            "optim": {"lr": 1e-3},
            "batch_size": 2,
            "max_steps": 1,
            "eval_before_after": False,
            "progress_bar": False,
            "output_dir": str(output_dir),
        }
        return from_dict(TrainConfig, _merge(base, overrides))

    return make
