#!/usr/bin/env bash
# The README's test command after setup: the habits CI keeps, then the test suite.
#   lint and format (ruff), types (mypy), layers (import-linter), tests and loss doctests (pytest).
# Extra arguments go to both pytest stages, e.g. scripts/check.sh -x -k losses
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/ruff" check .
"$BIN/ruff" format --check .
"$BIN/mypy"
"$BIN/lint-imports"
# Two stages on all cores: the default suite, then the slow tests (kill-and-resume subprocesses, DDP).
"$BIN/python" -m pytest -q -p no:cacheprovider -n auto --dist worksteal "$@"
"$BIN/python" -m pytest -q -p no:cacheprovider -n auto --dist worksteal -m slow "$@"
