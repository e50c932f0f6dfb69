"""Two training processes (accelerate, gloo on CPU) take the same step as one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("grpo_update_worker.py")
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip


# In place of --multi_gpu. FSDP: accelerate sets ACCELERATE_USE_FSDP and mmrft shards with fully_shard.
# DeepSpeed: the shipped config files, with 2 processes; accelerate builds the engine (on a CPU,
# DeepSpeed's CPU accelerator over gloo).
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
ENGINES = {
    "fsdp": ["--use_fsdp", "--fsdp_version", "2"],
    "zero2": ["--config_file", str(CONFIGS / "zero2.yaml")],
    "zero3": ["--config_file", str(CONFIGS / "zero3.yaml")],
}


def launcher(engine: str | None) -> list[str]:
    """accelerate's 2-process launch, plain (DDP) or with ``engine``."""
    if engine is None:
        return ACCELERATE
    return [a for a in ACCELERATE if a != "--multi_gpu"] + ENGINES[engine]


def launch(command: list[str], processes: int, tmp_path: Path, engine: str | None = None, fails_with: str | None = None) -> None:
    """Run `command` in 1 or 2 processes; it must succeed, or with `fails_with` fail saying so."""
    prefix = launcher(engine) if processes == 2 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    result = subprocess.run([*prefix, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    if fails_with is None:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    else:
        assert result.returncode != 0 and fails_with in result.stderr, result.stderr[-3000:]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_model_dir, grounding_data, length_reward) -> Path:
    """GRPO, 4 prompts x G 4, two micro-batches per process, REINFORCE++ (batch-level std) and token-mean loss."""
    root = tmp_path_factory.mktemp("multiprocess")
    config = {
        "stage": "grpo",
        "model": {"name_or_path": str(tiny_model_dir("qwen2_5_vl"))},
        "data": {"train": str(grounding_data.train)},
        "generation": {"num_generations": 4, "max_new_tokens": 8},
        "rewards": [{"name": "box_iou"}, {"name": length_reward, "weight": 0.1}],
        "algorithm": {"advantage": "reinforce_pp", "loss_aggregation": "token_mean", "entropy_coef": 0.01},
        "optim": {"lr": 1e-3, "grad_accum": 2, "max_grad_norm": 0},
        "batch_size": 4,
        "eval_before_after": False,
        "progress_bar": False,
        "output_dir": str(root / "run"),
    }
    path = root / "config.json"
    path.write_text(json.dumps(config))
    return path


SHARDING = {None: None, "fsdp": "FSDP", "zero2": "DeepSpeed ZeRO-2", "zero3": "DeepSpeed ZeRO-3"}


@pytest.mark.parametrize(
    "half, engine",
    [(False, None), (True, None), (False, "fsdp"), (False, "zero2"), (False, "zero3")],
    ids=["even-shards", "one-process-idle", "fsdp", "zero2", "zero3"],
)
def test_two_processes_match_one(config_file, tmp_path, half, engine):
    flag = ["--half"] if half else []
    launch([str(WORKER), str(config_file), str(tmp_path / "one.pt"), *flag], 1, tmp_path)
    launch([str(WORKER), str(config_file), str(tmp_path / "two.pt"), *flag], 2, tmp_path, engine=engine)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    zero_stage = int(engine[-1]) if engine and engine.startswith("zero") else None
    assert (one["processes"], two["processes"]) == (1, 2)
    assert (two["sharding"], two["zero_stage"]) == (SHARDING[engine], zero_stage)

    torch.testing.assert_close(two["advantages"], one["advantages"])
    assert one["advantages"].abs().sum() > 0
    for key in ("loss", "entropy", "grad_norm"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-4, abs=1e-7), key
    assert one["grads"].keys() == two["grads"].keys() and len(one["grads"]) > 50
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-4, atol=1e-7, msg=name)
    assert one["metrics"]["grad_norm"] > 0
    # Adam's first step is lr * g / (|g| + 1e-8): where g is ~1e-9, float-order noise in g (below
    # the gradient tolerance above) moves a weight by up to a few hundredths of the step (lr 1e-3).
    for name, weight in one["weights"].items():
        torch.testing.assert_close(two["weights"][name], weight, rtol=0, atol=5e-5, msg=name)
    assert one["nonfinite"] == two["nonfinite"] == {"skipped": 1, "unchanged": True}


@pytest.mark.parametrize(
    "engine, lora",
    [(None, False), ("fsdp", False), ("zero2", False), ("zero2", True), ("zero3", False)],
    ids=["ddp", "fsdp", "zero2", "zero2-lora", "zero3"],
)
def test_cli_two_processes_train_checkpoint_and_resume(config_file, tmp_path, grounding_data, engine, lora):
    """``accelerate launch -m mmrft train``: one run directory written once, resumable with as many processes."""
    config = json.loads(config_file.read_text())
    config.update(output_dir=str(tmp_path / "run"), save_every=1, rollouts_every=1)
    if lora:  # only the adapters train; DeepSpeed's state holds them, the checkpoint the merged model
        config["model"] = {**config["model"], "lora_rank": 4, "lora_alpha": 8.0}
    sharded = engine is not None
    if sharded:  # every process takes part in evaluation's forwards: check it, on a few held-out samples
        config.update(eval_before_after=True, eval_samples=4, data={**config["data"], "heldout": str(grounding_data.heldout)})
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    train = ["-m", "mmrft", "train", str(path)]
    launch([*train, "--max-steps", "2"], 2, tmp_path, engine=engine)
    run = tmp_path / "run"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]  # the main process logs, once per step
    assert all(m["vision/encodes"] == 8 for m in metrics)  # 4 prompts: 4 encodes to generate, 4 to train
    rollouts = (run / "rollouts.jsonl").read_text().splitlines()
    assert len(rollouts) == 2 * 4 * 4  # both processes' completions, every step
    state = torch.load(run / "checkpoints" / "step-000002" / "trainer_state.pt", weights_only=True)
    assert len(state["processes"]) == 2

    checkpoint = run / "checkpoints" / "step-000002"
    assert json.loads((checkpoint / "config.json").read_text())["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    if sharded:
        from transformers import AutoModelForImageTextToText

        reloaded, info = AutoModelForImageTextToText.from_pretrained(checkpoint, output_loading_info=True)
        assert not any(info.values()), info  # whole weights under the plain layout's names, nothing missing
        assert sum(p.numel() for p in reloaded.parameters()) > 1_000_000
        assert (checkpoint / "deepspeed").is_dir() == engine.startswith("zero")  # DeepSpeed's per-process state
        assert (checkpoint / "adapter").is_dir() == lora
        if engine == "zero2":  # DeepSpeed's module state: the trained weights only (ZeRO-3's are partitioned)
            saved = sum(f.stat().st_size for f in (checkpoint / "deepspeed").rglob("*model_states.pt"))
            whole = (checkpoint / "model.safetensors").stat().st_size
            assert saved < whole / 10 if lora else saved > whole * 0.9, (saved, whole)
        assert (run / "eval" / "start" / "heldout" / "eval.json").is_file()

    launch([*train, "--max-steps", "3", "--resume"], 2, tmp_path, engine=engine)
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    if sharded:
        assert json.loads((run / "summary.json").read_text())["final"]["heldout"]["n"] == 4
        # the gathered model and optimizer state resume exactly: step 3 as in an uninterrupted run
        straight = {**config, "output_dir": str(tmp_path / "straight"), "eval_before_after": False}
        path.write_text(json.dumps(straight))
        launch([*train, "--max-steps", "3"], 2, tmp_path, engine=engine)
        resumed, uninterrupted = (
            json.loads((root / "metrics.jsonl").read_text().splitlines()[-1]) for root in (run, tmp_path / "straight")
        )
        for key in ("loss", "reward/mean", "grad_norm", "entropy"):
            assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-5, abs=1e-8), key

    launch([*train, "--max-steps", "4", "--resume"], 1, tmp_path, fails_with="written by 2 training processes")


@pytest.mark.parametrize("engine", ["fsdp", "zero3"])
def test_lora_is_refused_where_the_weights_are_sharded(config_file, tmp_path, engine):
    """Merging the adapters into a checkpoint needs whole base weights: LoRA runs under DDP and ZeRO-2 only."""
    config = json.loads(config_file.read_text())
    config.update(output_dir=str(tmp_path / "run"), model={**config["model"], "lora_rank": 4})
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config))
    expected = f"model.lora_rank: LoRA under {SHARDING[engine]} is not supported yet"
    launch(["-m", "mmrft", "train", str(path), "--max-steps", "1"], 2, tmp_path, engine=engine, fails_with=expected)


@pytest.mark.parametrize("engine", ["fsdp", "zero2"])
def test_sharded_engines_refuse_what_would_desynchronise_their_processes(config_file, tmp_path, engine):
    """Token-budget micro-batches differ in number between processes: under FSDP (every forward
    gathers) or DeepSpeed ZeRO-2 (every backward reduces) that would hang, so it is refused."""
    config = json.loads(config_file.read_text())
    config.update(output_dir=str(tmp_path / "run"), optim={**config["optim"], "grad_accum": 1, "micro_batch_tokens": 4096})
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config))
    expected = f"optim.micro_batch_tokens: not supported under {SHARDING[engine]}"
    launch(["-m", "mmrft", "train", str(path), "--max-steps", "1"], 2, tmp_path, engine=engine, fails_with=expected)
