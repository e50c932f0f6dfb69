"""Nothing executes that shouldn't: safe YAML, safetensors only, weights-only trainer state, no shell
strings, reward plugins only when named, and no writes outside the run directory."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmrft.config import ConfigError, TrainConfig, load_config
from mmrft.policies.loading import ModelLoadError, load_model_and_processor
from mmrft.training import GRPOTrainer
from mmrft.training.checkpoint import _sha256

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs code: it creates the file it names."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_yaml_tags_that_run_code_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f'stage: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(TrainConfig, path)
    assert not marker.exists()


def test_pickled_weights_are_refused(tmp_path, tiny_model_dir):
    model_dir = tmp_path / "bin-model"
    shutil.copytree(tiny_model_dir("qwen2_5_vl"), model_dir)
    (model_dir / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    with open(model_dir / "pytorch_model.bin", "wb") as f:
        pickle.dump(Payload(marker), f)
    with pytest.raises(ModelLoadError, match="safetensors only"):
        load_model_and_processor(str(model_dir))
    assert not marker.exists()


def test_trainer_state_loads_weights_only(tmp_path, make_train_config, length_reward):
    config = make_train_config(tmp_path / "run", rewards=[{"name": length_reward}], max_steps=1)
    GRPOTrainer(config).train()
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000001"
    marker = tmp_path / "pwned"
    with open(checkpoint / "trainer_state.pt", "wb") as f:
        pickle.dump(Payload(marker), f)
    marker_file = checkpoint / "complete.json"  # re-vouch for the file so only weights_only stands in the way
    record = json.loads(marker_file.read_text())
    record["files"]["trainer_state.pt"] = _sha256(checkpoint / "trainer_state.pt")
    marker_file.write_text(json.dumps(record))
    with pytest.raises(pickle.UnpicklingError):
        GRPOTrainer(config, resume=True)
    assert not marker.exists()


def test_a_corrupt_checkpoint_is_detected_and_the_previous_one_used(tmp_path, make_train_config, length_reward, caplog):
    config = make_train_config(tmp_path / "run", rewards=[{"name": length_reward}], max_steps=2, save_every=1)
    GRPOTrainer(config).train()
    newest = tmp_path / "run" / "checkpoints" / "step-000002" / "model.safetensors"
    data = bytearray(newest.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the weights
    newest.write_bytes(bytes(data))
    resumed = GRPOTrainer(config, resume=True)
    assert resumed.step == 1
    assert "step-000002 is corrupt (model.safetensors does not match its recorded SHA-256)" in caplog.text


def test_no_shell_strings_in_the_code():
    # bare eval/exec only: ast.literal_eval and model.eval() are fine
    pattern = re.compile(r"shell=True|os\.system\(|os\.popen\(|(?<![\w.])(eval|exec)\(")
    files = [*ROOT.glob("mmrft/**/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("rewards/*.py")]
    assert len(files) > 30
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in pattern.finditer(p.read_text())]
    assert not offenders, offenders
    assert pattern.search("subprocess.run(cmd, shell=True)") and pattern.search("x = eval(s)")
    assert not pattern.search("ast.literal_eval(s); model.eval()")


def test_training_writes_only_inside_its_run_directory(tmp_path, tiny_model_dir, grounding_data, length_reward):
    home, cwd, tmp = tmp_path / "home", tmp_path / "cwd", tmp_path / "tmp"
    for d in (home, cwd, tmp):
        d.mkdir()
    (cwd / "rewards").mkdir()  # a plugin nobody named must never be imported
    (cwd / "rewards" / "evil.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').close()\n")
    model = tiny_model_dir("qwen2_5_vl")
    watched = [home, cwd, tmp, model, grounding_data.dir, Path(length_reward.split(":")[0]).parent]

    def snapshot() -> dict[str, float]:
        return {str(p): p.stat().st_mtime for d in watched for p in d.rglob("*")}

    before = snapshot()
    config = {
        "model": {"name_or_path": str(model)},
        "data": {"train": str(grounding_data.train), "heldout": str(grounding_data.heldout)},
        "generation": {"num_generations": 4, "max_new_tokens": 8},
        "rewards": [{"name": length_reward}, {"name": "box_iou"}],
        "batch_size": 2, "max_steps": 2, "save_every": 1, "eval_samples": 2, "progress_bar": False,
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    out = cwd / "runs" / "mine"
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("MMRFT_CACHE", None)
    env.pop("HF_HOME", None)
    launch = "import sys; from mmrft.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", launch, "train", str(tmp_path / "run.yaml"), "--output-dir", str(out)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    after = snapshot()
    changed = sorted(p for p in after if before.get(p) != after[p] and not p.startswith(str(out)))
    changed = [p for p in changed if p not in (str(cwd / "runs"),)]  # the run directory's own parent
    assert changed == [], changed
    assert (out / "summary.json").is_file()
    assert not (tmp_path / "pwned").exists()
