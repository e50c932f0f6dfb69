"""Kill -9 at random points and mid-checkpoint, SIGTERM and SIGINT: resumed runs equal an uninterrupted one.

Each run is a real ``mmrft train`` process. Invariants checked after every kill: every listed
checkpoint verifies (all files present with their recorded SHA-256); metrics and rollouts of
the finished run equal the uninterrupted run's (time fields aside), and so do its final weights.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from mmrft.training.checkpoint import list_checkpoints, verify_checkpoint

pytestmark = pytest.mark.faults
STEPS = 20  # enough steps that six kills, each after one or more new steps, land before the end
LAUNCH = "import sys; from mmrft.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def run_config(tmp_path_factory, tiny_model_dir, grounding_data, length_reward) -> Path:
    config = {
        "stage": "grpo",
        "model": {"name_or_path": str(tiny_model_dir("qwen2_5_vl"))},
        "data": {"train": str(grounding_data.train)},
        "generation": {"num_generations": 4, "max_new_tokens": 8},
        "rewards": [{"name": length_reward}, {"name": "box_iou"}],
        "optim": {"lr": 1e-3},
        "batch_size": 2,
        "max_steps": STEPS,
        "save_every": 1,
        "keep_last": 2,
        "rollouts_every": 1,
        "eval_before_after": False,
        "progress_bar": False,
    }
    path = tmp_path_factory.mktemp("kill") / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start(config: Path, out: Path, resume: bool = True) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = [sys.executable, "-c", LAUNCH, "train", str(config), "--output-dir", str(out)]
    return subprocess.Popen(
        args + (["--resume"] if resume else []), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def without_times(rows: list[dict]) -> list[dict]:
    """Rows without the measurements that differ between processes: wall times and peak memory."""
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "mem/"))} for r in rows]


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll ``condition`` every millisecond; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    raise TimeoutError("the training process made no progress")


@pytest.fixture(scope="module")
def reference(run_config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    proc = start(run_config, out, resume=False)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def assert_same_as_reference(out: Path, reference: Path) -> None:
    metrics = lines(out / "metrics.jsonl")
    assert [r["step"] for r in metrics] == list(range(1, STEPS + 1))  # nothing repeated, nothing lost
    assert without_times(metrics) == without_times(lines(reference / "metrics.jsonl"))
    assert lines(out / "rollouts.jsonl") == lines(reference / "rollouts.jsonl")
    final = f"checkpoints/step-{STEPS:06d}/model.safetensors"
    ours, theirs = load_file(out / final), load_file(reference / final)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert (ours[name] - theirs[name]).abs().max().item() <= 1e-6, name


def test_sigkill_anywhere_loses_and_repeats_nothing(run_config, reference, tmp_path):
    out = tmp_path / "run"
    checkpoints = out / "checkpoints"
    rng = random.Random(0)
    plan = ["mid-save", "random", "mid-save", "random", "mid-save", "random"]
    survived = {"random": 0, "mid-save": 0}
    for mode in plan:
        proc = start(run_config, out)
        done_before = len(lines(out / "metrics.jsonl"))
        if mode == "mid-save":
            alive = wait_for(lambda: checkpoints.is_dir() and any(checkpoints.glob(".step-*.partial")), proc)
        else:
            alive = wait_for(lambda: len(lines(out / "metrics.jsonl")) > done_before, proc)
            time.sleep(rng.uniform(0.0, 0.6))
        if not alive or proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if mode == "mid-save":
            assert any(checkpoints.glob(".step-*.partial")), "the kill was meant to land inside a checkpoint write"
        survived[mode] += 1
        for checkpoint in list_checkpoints(checkpoints):  # whole or absent: never a listed, broken one
            assert verify_checkpoint(checkpoint) is None, checkpoint
    assert survived == {"random": 3, "mid-save": 3}
    proc = start(run_config, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert not any(checkpoints.glob(".step-*.partial"))  # resume cleared the torn write
    assert_same_as_reference(out, reference)
    print(f"\nkills survived: {survived}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_checkpoints_and_says_how_to_resume(run_config, reference, tmp_path, sig):
    out = tmp_path / "run"
    proc = start(run_config, out, resume=False)
    assert wait_for(lambda: len(lines(out / "metrics.jsonl")) >= 3, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert f"stopped by {sig.name}" in stdout and "--resume" in stdout
    command = next(line for line in stdout.splitlines() if line.startswith("resume with: ")).removeprefix("resume with: ")
    assert command.split()[:2] == ["mmrft", "train"] and command.split()[-1] == "--resume"
    done = len(lines(out / "metrics.jsonl"))
    assert done < STEPS
    assert list_checkpoints(out / "checkpoints")[-1].name == f"step-{done:06d}"  # the last finished step is saved
    resumed = start(run_config, out)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert_same_as_reference(out, reference)
