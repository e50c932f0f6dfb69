"""Every broken config gets a one-line error naming the key (or file, or model), without a traceback."""

from __future__ import annotations

import pytest
import yaml

from mmrft.cli import main

pytestmark = pytest.mark.faults


@pytest.fixture
def base(tiny_model_dir, grounding_data) -> dict:
    return {
        "stage": "grpo",
        "model": {"name_or_path": str(tiny_model_dir("qwen2_5_vl"))},
        "data": {"train": str(grounding_data.train), "heldout": str(grounding_data.heldout)},
        "generation": {"num_generations": 4, "max_new_tokens": 8},
        "rewards": [{"name": "box_iou"}],
        "max_steps": 1,
        "eval_before_after": False,
        "progress_bar": False,
    }


BROKEN = {
    # wrong types
    "batch_size": ({"batch_size": "eight"}, "batch_size"),
    "optim.lr": ({"optim": {"lr": "fast"}}, "optim.lr"),
    "algorithm.dynamic_sampling": ({"algorithm": {"dynamic_sampling": "maybe"}}, "algorithm.dynamic_sampling"),
    # unknown keys
    "optim.learning_rate": ({"optim": {"learning_rate": 1e-5}}, "optim.learning_rate"),
    "algorithm.loss_type": ({"algorithm": {"loss_type": "dapo"}}, "algorithm.loss_type"),
    # missing files, models and names
    "data.train": ({"data": {"train": "nowhere/train.jsonl"}}, "data.train"),
    "data.heldout": ({"data": {"heldout": "nowhere/heldout.jsonl"}}, "data.heldout"),
    "model": ({"model": {"name_or_path": "./no-such-model-dir"}}, "no-such-model-dir"),
    "reward": ({"rewards": [{"name": "box_iuo"}]}, "rewards[0].name"),
    "reward file": ({"rewards": [{"name": "missing_plugin.py:score"}]}, "rewards[0].name"),
    "advantage": ({"algorithm": {"advantage": "ppo"}}, "algorithm.advantage"),
    # impossible combinations
    "num_generations": ({"generation": {"num_generations": 1}}, "generation.num_generations"),
    "grad_accum": ({"batch_size": 3, "optim": {"grad_accum": 2}}, "optim.grad_accum"),
    "kl_in without beta": ({"algorithm": {"kl_in": "reward"}}, "algorithm.kl_in"),
    "epsilon_low": ({"algorithm": {"epsilon_low": 1.5}}, "algorithm.epsilon_low"),
    "eval_every without heldout": ({"eval_every": 5, "data": {"heldout": None}}, "eval_every"),
    "sft_coef_end alone": ({"algorithm": {"sft_coef_end": 0.1}}, "algorithm.sft_coef_end"),
    "no rewards": ({"rewards": []}, "rewards"),
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_config_one_line_naming_the_key(case, base, tmp_path, capsys):
    change, key = BROKEN[case]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(_merge(base, change)))
    code = main(["train", str(path), "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("mmrft train: error:")]
    assert len(errors) == 1 and key in errors[0], err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_yaml_names_the_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("stage: [grpo\n")
    assert main(["train", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "not valid YAML" in line
