"""tools/bench_grpo.py, one round at 112 px: the JSON contract and the work each side does per step."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the benchmark compares against trl 1.16 (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]


def test_one_round_writes_the_contract(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "tools/bench_grpo.py", "--rounds", "1", "--warmup", "0", "--configs", "112", "--out", str(out)],
        cwd=ROOT, check=True, timeout=300, capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(out.read_text())["configs"]["112"]
    mmrft, unshared, trl = result["mmrft"], result["unshared"], result["trl"]
    assert result["baseline"] == "trl" and result["target"] == 0.7
    assert result["ratio"] == pytest.approx(mmrft["median_s"] / trl["median_s"])
    assert mmrft["runs"] == unshared["runs"] == trl["runs"] == 1
    # 4 prompts x 8 completions: mmrft encodes each image once for sampling and once for training;
    # the unshared baseline and TRL encode it once per completion in each.
    assert (mmrft["encodes_per_step"], unshared["encodes_per_step"], trl["encodes_per_step"]) == (8, 64, 64)
    assert mmrft["mmrft_vision_encodes_metric"] == 8 and unshared["mmrft_vision_encodes_metric"] == 64
    assert mmrft["patches_per_visual"] == trl["patches_per_visual"] == 64  # 112 px unscaled: 8 x 8 patches
    assert mmrft["completion_len"] == unshared["completion_len"] == trl["completion_len"] == 32
    assert 0 <= mmrft["overhead_share"] < 1 and 0 < mmrft["prepare_share"] < 1
