"""Commands that should answer at once do not import the heavy libraries (issue 29, part 5).

Each command runs in a fresh interpreter; what it left in ``sys.modules`` is the check, not a
wall-clock time (which varies with the machine's load).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "deepspeed", "accelerate", "datasets")
PROBE = (
    "import json, sys\n"
    "from mmrft.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    f"print(json.dumps({{'code': code, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
)


def loaded_by(*argv: str) -> tuple[int, list[str], str]:
    """(exit code, heavy modules imported, stdout + stderr) of ``mmrft ARGV`` in a fresh process."""
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["code"], report["loaded"], result.stdout + result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["eval", "--help"],
        ["data", "--help"],
        ["train", "configs/demo_grounding_grpo.yaml", "optim.lr_typo=1"],
        ["train", "configs/demo_grounding_grpo.yaml", "batch_size=7", "optim.grad_accum=2"],
    ],
)
def test_help_and_config_errors_import_no_torch(argv):
    code, loaded, output = loaded_by(*argv)
    assert code in (0, 2)
    assert loaded == [], f"{argv} imported {loaded}"
    if code == 2:
        assert "mmrft train: error:" in output and "Traceback" not in output


def test_rewards_and_data_inspect_import_no_transformers(tmp_path, grounding_data):
    from mmrft.data.synthetic import write_synthetic_split

    parquet = write_synthetic_split("counting", "train", tmp_path, n=5, format="parquet")
    for argv in (
        ["rewards", "list"],
        ["rewards", "score", "box_iou", "--completion", "<answer>[0, 0, 10, 10]</answer>", "--solution", "[0, 0, 10, 10]",
         "--column", "image_size=[112, 112]"],
        ["data", "inspect", str(parquet)],
        ["data", "inspect", str(grounding_data.train)],
    ):
        code, loaded, output = loaded_by(*argv)
        assert code == 0, output
        assert "transformers" not in loaded and "torch" not in loaded, f"{argv} imported {loaded}"
        if argv[1] == "score":
            assert '"score": 1.0' in output
        if argv[1] == "inspect":
            assert "validation: 5 of 5 rows checked are valid" in output or "validation: 16 of 16" in output
