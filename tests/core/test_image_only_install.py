"""An image-only install works (issue 27 part 6): with every optional backend hidden — PyAV,
decord, torchcodec, vLLM, DeepSpeed — an image GRPO run trains and `mmrft rewards list` answers.

Each test runs in a fresh interpreter whose ``sys.modules`` maps the hidden names to None: Python
then raises ImportError on ``import av`` and ``importlib.util.find_spec("av")`` returns None,
exactly as when the package is not installed (transformers' availability checks included).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

HIDDEN = ("av", "decord", "torchcodec", "vllm", "deepspeed")
PRELUDE = f"import sys\nfor name in {HIDDEN!r}:\n    sys.modules[name] = None\n"


def run_hidden(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_hiding_works(tmp_path):
    done = run_hidden(
        """
        import importlib.util
        assert all(importlib.util.find_spec(n) is None for n in ("av", "deepspeed"))
        try:
            import av
        except ImportError:
            print("hidden")
        """,
        tmp_path,
    )
    assert done.stdout.strip() == "hidden", done.stderr


def test_image_grpo_trains_without_optional_backends(tmp_path, tiny_model_dir, grounding_data):
    done = run_hidden(
        f"""
        from mmrft.cli import main
        code = main([
            "train", {str(tmp_path / "config.yaml")!r}, "--output-dir", {str(tmp_path / "run")!r},
        ])
        loaded = sorted(n for n in {HIDDEN!r} if sys.modules.get(n) is not None)
        print("exit", code, "loaded", loaded)
        """,
        _write_config(tmp_path, tiny_model_dir, grounding_data),
    )
    assert "exit 0 loaded []" in done.stdout, done.stdout + done.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(math.isfinite(r["loss"]) for r in rows)
    assert (tmp_path / "run" / "checkpoints" / "step-000002" / "model.safetensors").is_file()


def test_rewards_list_without_optional_backends(tmp_path):
    done = run_hidden("from mmrft.cli import main\nprint('exit', main(['rewards', 'list']))", tmp_path)
    assert "box_iou" in done.stdout and "exit 0" in done.stdout, done.stdout + done.stderr


def _write_config(tmp_path, tiny_model_dir, grounding_data):
    (tmp_path / "config.yaml").write_text(
        f"""stage: grpo
model: {{name_or_path: {tiny_model_dir("qwen2_5_vl")}}}
data: {{train: {grounding_data.train}}}
generation: {{num_generations: 4, max_new_tokens: 12}}
rewards: [{{name: format_nothink}}, {{name: box_iou}}]
optim: {{lr: 1.0e-3}}
batch_size: 2
max_steps: 2
eval_before_after: false
progress_bar: false
"""
    )
    return tmp_path
