#!/usr/bin/env bash
# On a machine with 2 or more NVIDIA GPUs: run the cuda-marked multi-process tests (Lightning's
# FSDP strategy, Accelerate's FSDP through CotTrainer; each compares 2 GPUs with one process),
# then COT's cost under DDP and FSDP2 on NCCL, and write both into docs/benchmarks.md
# (sections `multi_gpu_check` and `distributed_gpu`). Needs a CUDA build of torch:
#   TORCH_SPEC="torch==2.14.1" scripts/setup.sh && scripts/multi_gpu_check.sh
#
# Exit status: 0 when every test passed, 1 when one failed, 2 without 2 usable GPUs.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.device_count() >= 2 else 1)"; then
    echo "multi_gpu_check: needs 2 or more NVIDIA GPUs and a CUDA build of torch (torch.cuda.device_count() < 2)" >&2
    exit 2
fi
report=$(mktemp -d)
"$PY" -m pytest -m cuda -v -p no:cacheprovider -o addopts="-ra --strict-markers" \
    --junitxml "$report/cuda.xml" tests/training/test_fsdp.py tests/training/test_ddp.py | tee "$report/cuda.log"
tests_status=${PIPESTATUS[0]}
"$PY" -m benchmarks.bench_distributed --cuda | tee "$report/bench.log"
bench_status=${PIPESTATUS[0]}
"$PY" -m benchmarks.gpu_check_report "$report/cuda.xml" "$tests_status" "$bench_status" "scripts/multi_gpu_check.sh" \
    --section multi_gpu_check --title "Multi-GPU check: FSDP through Lightning and Accelerate"
if [ "$tests_status" -ne 0 ] || [ "$bench_status" -ne 0 ]; then
    exit 1
fi
