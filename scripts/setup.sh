#!/usr/bin/env bash
# Create .venv in the repo root and install mmrft with everything it needs (idempotent).
# CPU platform pins: torch==2.14.1 torchvision==0.29.1 (see README for GPU installs); every other
# package at the version in scripts/constraints.txt, the set the tests last passed with.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.mmrft-installed
want=$(cat pyproject.toml scripts/setup.sh scripts/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
    .venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[dev,video,logging]"
    echo "$want" > "$stamp"
fi
