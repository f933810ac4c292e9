#!/usr/bin/env bash
# The README's test command after setup: the habits CI keeps, then the test suite.
#   lint and format (ruff), types (mypy), layers (import-linter), the sdist and wheel (build, twine check),
#   the docs site (mkdocs build --strict), tests and loss doctests (pytest).
# Extra arguments go to both pytest stages, e.g. scripts/check.sh -x -k losses
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/ruff" check .
"$BIN/ruff" format --check .
"$BIN/mypy"
"$BIN/lint-imports"
# The sdist and wheel, built as a release is (an isolated build env with setuptools from the package index),
# into a temporary folder, then twine's checks of their metadata and README. The test suite builds without
# isolation instead (tests/test_packaging.py, slow), so that it needs no index.
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$BIN/python" -m build --quiet --outdir "$out/dist" .
"$BIN/twine" check --strict "$out"/dist/*
# The docs site (mkdocs.yml): a broken link or anchor, a docstring griffe cannot parse or a public object of the
# API pages without a docstring fails the build.
NO_MKDOCS_2_WARNING=1 "$BIN/mkdocs" build --strict --quiet --site-dir "$out/site"
# Two stages on all cores: the default suite, then the slow tests (kill-and-resume subprocesses, DDP).
"$BIN/python" -m pytest -q -p no:cacheprovider -n auto --dist worksteal "$@"
"$BIN/python" -m pytest -q -p no:cacheprovider -n auto --dist worksteal -m slow "$@"
