"""report_to: TensorBoard and W&B (offline) receive every metric of metrics.jsonl at its step, the
config, and a rollout table with the prompt images, read back with each package's own reader."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from mmrft.config import to_dict
from mmrft.training import GRPOTrainer

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")


def wandb_offline(monkeypatch: pytest.MonkeyPatch, root) -> None:
    """W&B never reaches the network and writes nothing outside ``root`` (its staging area included)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for var, sub in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(var, str(root / "wandb-home" / sub))


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def same(logged, expected) -> bool:
    """A sink's value equals metrics.jsonl's (null there is a non-finite value, NaN in the sinks)."""
    if expected is None:
        return logged is None or logged == "NaN" or (isinstance(logged, float) and math.isnan(logged))
    return logged == pytest.approx(expected, rel=1e-6, abs=1e-9)


def pixels(image) -> np.ndarray:
    return np.asarray(Image.open(image if not isinstance(image, bytes) else io.BytesIO(image)).convert("RGB"))


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, make_train_config):
    """A 3-step GRPO run reporting to both sinks, rollouts at steps 1 and 3 (rollouts_every 2)."""
    root = tmp_path_factory.mktemp("sinks")
    out = root / "run"
    mp = pytest.MonkeyPatch()
    wandb_offline(mp, root)
    config = make_train_config(out, max_steps=3, rollouts_every=2, save_every=3, report_to=["tensorboard", "wandb"])
    try:
        GRPOTrainer(config).train()
    finally:
        mp.undo()
    return out, config


def test_tensorboard_holds_every_metric_at_its_step_and_the_rollout_table(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    out, _ = logged_run
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [row["step"] for row in metrics] == [1, 2, 3]
    tags = set(events.Tags()["scalars"])
    keys = {key for row in metrics for key in row} - {"step"}
    assert keys <= tags, f"TensorBoard lacks {sorted(keys - tags)}"
    assert {"reward/mean", "reward/box_iou/mean", "loss", "entropy", "time/step_s"} <= keys
    for key in keys:
        logged = {event.step: event.value for event in events.Scalars(key)}
        assert sorted(logged) == [1, 2, 3], key
        for row in metrics:
            assert same(logged[row["step"]], row[key]), (key, row["step"], logged[row["step"]], row[key])

    texts = {event.step: tensor_util.make_ndarray(event.tensor_proto).item().decode() for event in events.Tensors("rollouts/text_summary")}
    assert sorted(texts) == [1, 3]
    for step, table in texts.items():
        rollouts = [r for r in read_jsonl(out / "rollouts.jsonl") if r["step"] == step]
        assert len(rollouts) == 2 * 4
        lines = table.splitlines()
        assert lines[0] == "| prompt | prompt_id | completion | reward | reward/box_iou | reward/format_nothink | advantage |"
        assert len(lines) == 2 + len(rollouts)
        prompts = list(dict.fromkeys(r["prompt_id"] for r in rollouts))
        for line, row in zip(lines[2:], rollouts, strict=True):
            place = prompts.index(row["prompt_id"])
            assert line.startswith(f"| {place} | {row['prompt_id']} | ") and f"| {row['reward']:.4g} |" in line
        for k, prompt_id in enumerate(prompts):
            images = {event.step: event for event in events.Images(f"rollouts/prompt_{k}")}
            source = next(r["image"] for r in rollouts if r["prompt_id"] == prompt_id)
            assert np.array_equal(pixels(images[step].encoded_image_string), pixels(source))


def wandb_records(out) -> list[dict]:
    """The offline run's records, decoded from its .wandb file by wandb's own reader (`wandb leet inspect`)."""
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    proc = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_wandb_offline_run_holds_the_config_every_metric_and_the_rollout_table(logged_run):
    out, config = logged_run
    records = wandb_records(out)
    assert not any(r["type"] == "exit" and r["exit"].get("exit_code") for r in records)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    logged_config = {k: v for k, v in run["config"]["update"].items() if k != "_wandb"}
    assert logged_config == json.loads(json.dumps(to_dict(config)))
    assert logged_config == yaml.safe_load((out / "config.yaml").read_text())
    assert run["display_name"] == "run" and run["project"] == "mmrft"

    history = {r["history"]["step"]["num"]: r["history"]["item"] for r in records if r["type"] == "history"}
    metrics = read_jsonl(out / "metrics.jsonl")
    assert sorted(history) == [1, 2, 3]
    for row in metrics:
        for key, value in row.items():
            if key != "step":
                assert key in history[row["step"]], (key, row["step"])
                assert same(history[row["step"]][key], value), (key, row["step"], history[row["step"]][key], value)
    assert [step for step in (1, 2, 3) if "rollouts._type" in history[step]] == [1, 3]

    artifacts = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert len(artifacts) == 2  # one table a rollout step
    for step, artifact in zip((1, 3), artifacts, strict=True):
        assert history[step]["rollouts._type"] == "table-file" and history[step]["rollouts.nrows"] == 8
        staged = {entry["path"]: entry["local_path"] for entry in artifact["manifest"]["contents"]}
        table = json.loads(open(staged["rollouts.table.json"]).read())
        assert table["columns"] == [
            "step", "image", "prompt_id", "completion", "reward", "reward/box_iou", "reward/format_nothink", "advantage"
        ]
        rollouts = [r for r in read_jsonl(out / "rollouts.jsonl") if r["step"] == step]
        assert len(table["data"]) == len(rollouts)
        for cells, row in zip(table["data"], rollouts, strict=True):
            logged_step, image, prompt_id, completion, reward, box_iou, fmt, advantage = cells
            assert (logged_step, prompt_id, completion) == (step, row["prompt_id"], row["completion"])
            assert [reward, box_iou, fmt, advantage] == pytest.approx(
                [row["reward"], row["reward/box_iou"], row["reward/format_nothink"], row["advantage"]], abs=1e-6
            )
            assert image["_type"] == "image-file"
            assert np.array_equal(pixels(staged[image["path"]]), pixels(row["image"]))


def test_tensorboard_after_a_resume_shows_the_redone_steps_once(tmp_path, make_train_config):
    """Steps logged after the last checkpoint are redone on resume; TensorBoard drops the first
    launch's values of them (purge_step), as metrics.jsonl drops its lines."""
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    GRPOTrainer(make_train_config(out, max_steps=3, save_every=2, report_to=["tensorboard"])).train()
    first = {row["step"]: row["loss"] for row in read_jsonl(out / "metrics.jsonl")}
    shutil.rmtree(out / "checkpoints" / "step-000003")  # killed after logging step 3, before its checkpoint
    resumed = GRPOTrainer(make_train_config(out, max_steps=4, save_every=2, report_to=["tensorboard"]), resume=True)
    assert resumed.step == 2
    resumed.train()
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one file a launch
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    loss = [(event.step, event.value) for event in events.Scalars("loss")]
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [step for step, _ in loss] == [row["step"] for row in metrics] == [1, 2, 3, 4]
    assert [value for _, value in loss] == pytest.approx([row["loss"] for row in metrics], rel=1e-6)
    assert loss[1][1] == pytest.approx(first[2], rel=1e-6)  # steps before the checkpoint: the first launch's


def test_rollout_images_as_paths_data_uris_bytes_or_pixels(tmp_path, grounding_data):
    """Prompt images reach the table however the dataset holds them; rollouts.jsonl keeps paths only."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mmrft.config import TrainConfig
    from mmrft.data.columns import data_uri
    from mmrft.training.run_dir import RunDir

    path = json.loads(grounding_data.train.read_text().splitlines()[0])["messages"][0]["content"][0]["image"]
    path = str(grounding_data.train.parent / path)
    png = open(path, "rb").read()
    images = [path, data_uri(png), {"bytes": png, "path": None}, Image.open(path), "missing.png"]
    run = RunDir(tmp_path / "run", TrainConfig(), report_to=["tensorboard"])
    rows = [{"step": 5, "prompt_id": f"p{k}", "image": image, "completion": "c", "reward": 1.0, "advantage": 0.0} for k, image in enumerate(images)]
    run.log_rollouts(rows)
    run.close()
    logged = read_jsonl(tmp_path / "run" / "rollouts.jsonl")
    assert [row.get("image") for row in logged] == [path, None, None, None, "missing.png"]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == [f"rollouts/prompt_{k}" for k in range(4)]  # the missing file has none
    for k in range(4):
        assert np.array_equal(pixels(events.Images(f"rollouts/prompt_{k}")[0].encoded_image_string), pixels(path))
