#!/usr/bin/env bash
# The README's test command after setup: the habits CI keeps, then the test suite.
#   lint and format (ruff), types (mypy), layers (import-linter), tests and loss doctests (pytest).
# Extra arguments go to pytest, e.g. scripts/check.sh -x -k losses
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/ruff" check .
"$BIN/ruff" format --check .
"$BIN/mypy"
"$BIN/lint-imports"
"$BIN/python" -m pytest -q -p no:cacheprovider "$@"
