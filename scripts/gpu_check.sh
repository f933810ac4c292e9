#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: run every `cuda`-marked test, then the large-vocabulary
# GPU benchmark, and write both results into docs/benchmarks.md (sections `gpu_check` and
# `large_vocab_gpu`). Needs a CUDA build of torch: TORCH_SPEC="torch==2.14.1" scripts/setup.sh
#
#   scripts/gpu_check.sh            # full benchmark grid
#   scripts/gpu_check.sh --quick    # one benchmark shape
#
# Exit status: 0 when every cuda test passed, 1 when one failed, 2 without a usable GPU.
# backend="auto" of the chunked losses is to pick Triton on CUDA only after this has passed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: needs an NVIDIA GPU and a CUDA build of torch (torch.cuda.is_available() is False)" >&2
    exit 2
fi
report=$(mktemp -d)
"$PY" -m pytest -m cuda -v -p no:cacheprovider -o addopts="-ra --strict-markers" \
    --junitxml "$report/cuda.xml" tests | tee "$report/cuda.log"
tests_status=${PIPESTATUS[0]}
"$PY" -m benchmarks.bench_large_vocab_gpu "$@" | tee "$report/bench.log"
bench_status=${PIPESTATUS[0]}
"$PY" -m benchmarks.gpu_check_report "$report/cuda.xml" "$tests_status" "$bench_status" "scripts/gpu_check.sh $*"
if [ "$tests_status" -ne 0 ] || [ "$bench_status" -ne 0 ]; then
    exit 1
fi
