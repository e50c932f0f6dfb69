"""End to end through the `mmrft` command: the demo's GRPO config and the base's SFT config, shortened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmrft.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "models" / "tiny-qwen2_5_vl-base"


def _data_overrides(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    return [
        f"data.train={data / 'train.jsonl'}",
        f"data.heldout={data / 'heldout.jsonl'}",
        "data.synthetic.train=24",
        "data.synthetic.heldout=8",
        "eval_samples=8",
        "progress_bar=false",
    ]


@pytest.mark.slow
def test_demo_config_runs_end_to_end_with_the_shipped_base(tmp_path, capsys):
    """The README's main job, shortened: start eval, GRPO steps, final eval, summary table."""
    if not (BASE / "config.json").is_file():
        pytest.skip(f"shipped base missing at {BASE}")
    out = tmp_path / "run"
    code = main(
        ["train", str(ROOT / "configs/demo_grounding_grpo.yaml"), "--max-steps", "3", "--output-dir", str(out),
         f"model.name_or_path={BASE}", "batch_size=2", "max_minutes=null", *_data_overrides(tmp_path)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| heldout (n=8) | acc@0.5 |" in printed and str(out / "summary.json") in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3
    for tag in ("start", "final"):
        for split in ("heldout", "train"):
            result = summary[tag][split]
            assert result["n"] == 8 and set(result["metrics"]) == {"acc@0.5", "mean_iou"}
    # The shipped base already answers in format: its start reward is well above zero.
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert steps[0]["reward/format_nothink/mean"] > 0.5
    config = (out / "config.yaml").read_text()
    assert "stage: grpo" in config and "max_steps: 3" in config


@pytest.mark.slow
def test_pretrain_config_runs_sft_from_a_tiny_spec(tmp_path):
    out = tmp_path / "run"
    code = main(
        ["train", str(ROOT / "configs/pretrain_base.yaml"), "--max-steps", "2", "--output-dir", str(out),
         "batch_size=4", "max_minutes=null", *_data_overrides(tmp_path)]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and Path(summary["final_checkpoint"]).is_dir()
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gaussian", "tokens"])
def test_driving_recipe_runs_end_to_end(tmp_path, kind):
    """World model, then behaviour cloning, then GRPO in the world model, through `mmrft train`."""
    data = [
        f"data.train={tmp_path / 'data' / 'train.npz'}",
        f"data.heldout={tmp_path / 'data' / 'heldout.npz'}",
        "data.train_episodes=24",
        "data.heldout_episodes=8",
        "eval_episodes=4",
        "eval_every=0",
    ]
    wm, bc, rl = tmp_path / "wm", tmp_path / "bc", tmp_path / "rl"
    small_wm = ["world_model.members=2", "world_model.hidden=32", "max_steps=40", "save_every=40"]
    assert main(["train", str(ROOT / "configs/driving_world_model.yaml"), *data, *small_wm, "--output-dir", str(wm)]) == 0
    bc_config = "driving_bc_gaussian.yaml" if kind == "gaussian" else "driving_bc_tokens.yaml"
    steps = "max_steps=60" if kind == "gaussian" else "max_steps=3"
    assert main(["train", str(ROOT / "configs" / bc_config), *data, steps, "save_every=100", "batch_size=8", "--output-dir", str(bc)]) == 0
    rl_config = "driving_grpo_gaussian.yaml" if kind == "gaussian" else "driving_grpo_tokens.yaml"
    overrides = [
        f"world_model.path={wm / 'checkpoints' / 'step-000040'}",
        f"policy.init={next((bc / 'checkpoints').iterdir())}",
        "grpo.scenarios_per_step=2",
        "grpo.group_size=2",
        "max_steps=2",
    ]
    assert main(["train", str(ROOT / "configs" / rl_config), *data, *overrides, "--output-dir", str(rl)]) == 0
    summary = json.loads((rl / "summary.json").read_text())
    final = summary["final"]["heldout"]["metrics"]
    assert summary["steps"] == 2 and 0 <= final["collision"] <= 1 and "wm_reward_gap" in final
    metrics = [json.loads(line) for line in (rl / "metrics.jsonl").read_text().splitlines()]
    assert {"reward/mean", "loss", "clip_frac", "entropy", "rollout/collision", "frac_zero_std_groups"} <= set(metrics[-1])
    wm_summary = json.loads((wm / "summary.json").read_text())
    assert "position_error_m@1s" in wm_summary["final"]["heldout"]["metrics"]


def test_driving_grpo_without_a_world_model_is_a_one_line_error(tmp_path, capsys):
    code = main(["train", str(ROOT / "configs/driving_grpo_gaussian.yaml"), "world_model.path=null", "--output-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "world_model.path" in err


@pytest.mark.slow
def test_planner_recipe_runs_end_to_end(tmp_path):
    """The VLM waypoint planner: SFT on expert plans, then GRPO scored by the trajectory verifier."""
    if not (BASE / "config.json").is_file():
        pytest.skip(f"shipped base missing at {BASE}")
    sft, grpo = tmp_path / "sft", tmp_path / "grpo"
    common = ["max_minutes=null", "save_every=2", *_data_overrides(tmp_path)]
    assert main(["train", str(ROOT / "configs/driving_sft_planner.yaml"), "--max-steps", "2", "--output-dir", str(sft), "batch_size=4", *common]) == 0
    checkpoint = json.loads((sft / "summary.json").read_text())["final_checkpoint"]
    code = main(
        ["train", str(ROOT / "configs/driving_grpo_planner.yaml"), "--max-steps", "2", "--output-dir", str(grpo),
         f"model.name_or_path={checkpoint}", "batch_size=2", "generation.num_generations=2", *common]
    )
    assert code == 0
    summary = json.loads((grpo / "summary.json").read_text())
    metrics = summary["final"]["heldout"]["metrics"]
    assert set(metrics) >= {"reward", "collision", "offroad", "valid"}
    assert ({"ade", "fde"} <= set(metrics)) == (metrics["valid"] > 0)  # ADE/FDE over valid plans only, absent if none
    steps = [json.loads(line) for line in (grpo / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2] and all("reward/trajectory/mean" in s for s in steps)

    # closed loop: GRPO of the SFT planner inside a (small) world model
    wm, closed = tmp_path / "wm", tmp_path / "closed"
    data = [f"data.train={tmp_path / 'driving' / 'train.npz'}", f"data.heldout={tmp_path / 'driving' / 'heldout.npz'}",
            "data.train_episodes=24", "data.heldout_episodes=8"]
    small_wm = ["world_model.members=2", "world_model.hidden=32", "max_steps=40", "save_every=40", "eval_every=0"]
    assert main(["train", str(ROOT / "configs/driving_world_model.yaml"), *data, *small_wm, "--output-dir", str(wm)]) == 0
    overrides = [f"world_model.path={wm / 'checkpoints' / 'step-000040'}", f"policy.init={checkpoint}", "grpo.scenarios_per_step=2",
                 "grpo.group_size=2", "max_steps=1", "eval_episodes=2"]
    assert main(["train", str(ROOT / "configs/driving_grpo_planner_wm.yaml"), *data, *overrides, "--output-dir", str(closed)]) == 0
    (row,) = [json.loads(line) for line in (closed / "metrics.jsonl").read_text().splitlines()]
    assert row["clip_frac"] == 0.0 and row["entropy"] > 0  # one iteration: every ratio is exactly 1
