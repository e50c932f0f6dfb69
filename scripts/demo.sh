#!/usr/bin/env bash
# The main job: set up, then Dr. GRPO on synthetic grounding from the shipped tiny base, with a
# before/after table on the held-out split (also in runs/demo/summary.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/mmrft train configs/demo_grounding_grpo.yaml "$@"
