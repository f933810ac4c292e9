"""Large-vocabulary output layer + loss on CPU: peak memory and time, chunked vs unfused.

Run:  python -m benchmarks.bench_large_vocab [--quick] [--no-write] [--with-torch-linear-ce]

One forward+backward of ``loss(hidden @ W.T + b, target)`` through the output layer
(hidden N x H, W V x H, float32), gradients for hidden, W and b. The baseline is what
a user writes without this package: materialized logits, ``F.cross_entropy`` plus the
authors' ComplementEntropy formula (``tests/helpers/references.py``, with their epsilons).
Every ratio divides by that baseline measured in the same run on the same tensors.

Peak memory: the high-water mark is reset by writing 5 to /proc/self/clear_refs, VmRSS
is read before and VmHWM after one forward+backward, after a warm-up run of the same
function; the difference is the resident memory the step adds on top of its inputs
(it includes the gradients: N x H, V x H and V floats). For the largest configurations
the warm-up runs on the first WARMUP_ROWS rows (same V, same code paths and compiled
kernels), which keeps the whole run to a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import complement
from benchmarks._common import DOCS, machine, peak_extra_bytes, rerun_with, write_section
from complement.losses.linear import (
    linear_complement_entropy,
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
)
from tests.helpers.references import authors_complement_entropy

HIDDEN = 256
GRID = [(32000, 256), (32000, 1024), (32000, 2048), (128000, 256), (128000, 1024), (128000, 2048)]
QUICK_GRID = [(32000, 256), (128000, 256)]
LARGE = 64 * 10**6  # N x V above which one timed round is taken and the warm-up is shortened
WARMUP_ROWS = 256
BASELINE = "unfused: F.cross_entropy + authors' complement"


def _unfused_authors(h, w, b, t):
    logits = F.linear(h, w, b)
    return F.cross_entropy(logits, t) + authors_complement_entropy(logits, t, eps=True)


METHODS = {
    BASELINE: _unfused_authors,
    "unfused logits + complement.cross_entropy_and_complement_entropy": lambda h, w, b, t: sum(
        complement.cross_entropy_and_complement_entropy(F.linear(h, w, b), t)
    ),
    "chunked: linear_cross_entropy_and_complement (CE + complement)": lambda h, w, b, t: sum(
        linear_cross_entropy_and_complement(h, w, t, b)
    ),
    "chunked: linear_cross_entropy (COT step 1, CE only)": lambda h, w, b, t: linear_cross_entropy(h, w, t, b),
    "chunked: linear_complement_entropy (COT step 2, complement only)": lambda h, w, b, t: linear_complement_entropy(
        h, w, t, b
    ),
    "unfused: F.cross_entropy only": lambda h, w, b, t: F.cross_entropy(F.linear(h, w, b), t),
}
# torch's own chunked CE (CE only) is slow on CPU for large V (tens of seconds per step at
# V=128000, N=1024 on 2 cores), so it runs only when asked for.
TORCH_LINEAR_CE = "torch F.linear_cross_entropy with LinearCrossEntropyOptions() (CE only)"


def _torch_linear_cross_entropy(h, w, b, t):
    return F.linear_cross_entropy(h, w, t, linear_bias=b, options=torch.nn.LinearCrossEntropyOptions())


# The section that bench_large_vocab_gpu.py owns; written here only while it is a stub.
GPU_SECTION = "large_vocab_gpu"
GPU_STUB = """## Large vocabulary on GPU: chunked/Triton vs torch eager, torch.compile, Liger, CCE

**Not run yet.** There are no GPU numbers: the script has not yet run on a GPU. It
measures them and replaces this section:
`python -m benchmarks.bench_large_vocab_gpu` on a machine with an NVIDIA GPU, with
`triton` installed and, optionally, `liger-kernel` and `cut-cross-entropy` for comparison.
"""


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(len(os.sched_getaffinity(0)))


def bench(num_classes: int, rows: int, rounds: int, methods: dict):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(rows, HIDDEN, generator=g).requires_grad_()
    weight = (torch.randn(num_classes, HIDDEN, generator=g) / HIDDEN**0.5).requires_grad_()
    bias = torch.zeros(num_classes).requires_grad_()
    target = torch.randint(0, num_classes, (rows,), generator=g)
    params = (hidden, weight, bias)

    def clear():
        for p in params:
            p.grad = None

    def step(loss_fn, rows=rows):
        h, t = (hidden, target) if rows == hidden.shape[0] else (hidden[:rows], target[:rows])

        def run():
            loss_fn(h, weight, bias, t).backward()
            clear()  # freed inside the measured region: "before" never holds old gradients

        return run

    steps = {name: step(fn) for name, fn in methods.items()}
    warmup_rows = WARMUP_ROWS if rows * num_classes > LARGE else rows
    for fn in methods.values():  # warm-up: compiles the row kernels, touches every code path
        step(fn, warmup_rows)()
    times: dict[str, list[float]] = {name: [] for name in steps}
    memory: dict[str, int | None] = {}
    for r in range(rounds):
        for name, run in steps.items():  # round-robin, so drift hits every method alike

            def timed(run=run, name=name):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)

            if r == 0:
                memory[name] = peak_extra_bytes(timed)
            else:
                gc.collect()
                timed()
    return {name: statistics.median(t) for name, t in times.items()}, memory


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # A fixed threshold stops glibc from recycling large freed blocks on the heap,
        # so every large tensor is mmap'd and shows up in the resident peak.
        rerun_with({"MALLOC_MMAP_THRESHOLD_": "131072"})
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two small configurations, one timed round")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--with-torch-linear-ce", action="store_true", help=f"add the row '{TORCH_LINEAR_CE}'")
    args = parser.parse_args()
    started = time.perf_counter()
    methods = dict(METHODS)
    if args.with_torch_linear_ce:
        methods[TORCH_LINEAR_CE] = _torch_linear_cross_entropy
    command = " ".join(["python -m benchmarks.bench_large_vocab", *sys.argv[1:]])
    lines = [
        "## Large vocabulary on CPU: chunked output layer + loss vs materialized logits",
        "",
        f"Command: `{command}`. Machine: nproc {_nproc()}; {machine()}; "
        f"{torch.get_num_threads()} torch threads. float32, H={HIDDEN}, "
        f"kernel mode `COMPLEMENT_KERNELS={os.environ.get('COMPLEMENT_KERNELS', 'auto')}`, "
        "chunk rows from the default 512 MiB budget.",
        "",
        "One forward+backward through the output layer (gradients for hidden, W and b). "
        f"Ratios divide by the first row ({BASELINE}), measured in the same run. "
        "Extra peak: resident memory one step adds above its inputs (VmHWM after minus VmRSS before, "
        f"after a warm-up run; for N×V > {LARGE // 10**6}M the warm-up uses the first {WARMUP_ROWS} rows), "
        "gradients included. The chunked rows never hold the N×V logits.",
        "",
        f"Load average when the run started: {os.getloadavg()[0]:.1f} (other processes may share the machine; "
        "times are medians of 3 rounds, or 1 for N×V > 64M, taken round-robin so that load hits every row alike).",
        "",
    ]
    for num_classes, rows in QUICK_GRID if args.quick else GRID:
        rounds = 1 if args.quick or rows * num_classes > LARGE else 3
        times, memory = bench(num_classes, rows, rounds, methods)
        base_time, base_mem = times[BASELINE], memory[BASELINE]
        logits_mib = rows * num_classes * 4 / 2**20
        lines += [
            f"### V={num_classes}, N={rows} (N×V float32 logits: {logits_mib:.0f} MiB; "
            f"baseline {base_time:.2f} s, median of {rounds})",
            "",
            "| method | time (s) | time / baseline | extra peak (MiB) | peak / baseline |",
            "|---|---|---|---|---|",
        ]
        for name in methods:
            mem = memory[name]
            mem_cells = "n/a | n/a" if mem is None or not base_mem else f"{mem / 2**20:.0f} | {mem / base_mem:.3f}"
            lines.append(f"| {name} | {times[name]:.3f} | {times[name] / base_time:.2f}× | {mem_cells} |")
        lines.append("")
        print("\n".join(lines[-len(methods) - 5 :]), flush=True)
    elapsed = time.perf_counter() - started
    lines.append(f"Total run time: {elapsed:.0f} s; load average at the end: {os.getloadavg()[0]:.1f}.")
    print(lines[-1])
    if not args.no_write:
        write_section("large_vocab", "\n".join(lines))
        text = DOCS.read_text()
        if f"<!-- BEGIN {GPU_SECTION} -->" not in text or "**Not run yet.**" in text:
            write_section(GPU_SECTION, GPU_STUB)
        print("wrote docs/benchmarks.md (sections 'large_vocab' and, while unrun, 'large_vocab_gpu')")


if __name__ == "__main__":
    main()
