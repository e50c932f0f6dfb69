"""tools/bench_data_scaling.py runs end to end on small sizes and reports both sizes and the growth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_data_scaling_reports_time_and_memory(tmp_path):
    result = subprocess.run(
        [sys.executable, "tools/bench_data_scaling.py", "--sizes", "20", "200", "--repeats", "1", "--data-dir", str(tmp_path),
         "--out", str(tmp_path / "bench.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )
    report = json.loads(result.stdout)
    assert set(report) == {"20", "200", "growth"}
    written = json.loads((tmp_path / "bench.json").read_text())
    assert {k: written[k] for k in report} == report and len(written["runs"]["200"]) == 1
    for size in ("20", "200"):
        assert 0 < report[size]["setup_s"] < report[size]["first_step_s"]
        assert report[size]["peak_rss_mb"] > 100
        assert (tmp_path / f"grounding-{size}" / "train.parquet").is_file()
    assert report["growth"]["first_step_s"] == pytest.approx(report["200"]["first_step_s"] - report["20"]["first_step_s"], abs=0.02)
