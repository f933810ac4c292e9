"""UNTESTED: large-vocabulary output layer + loss on an NVIDIA GPU.

This script was written where no GPU was available and has never been run. Expect to
fix small things on first use; the numbers it writes are the first GPU numbers.

Run:  python -m benchmarks.bench_large_vocab_gpu [--quick] [--no-write]

One forward+backward of ``loss(hidden @ W.T, target)`` (bfloat16, no bias, as in
language-model heads), gradients for hidden and W. Rows:

- CE + complement (COT's joint loss): torch eager on materialized logits
  (``F.cross_entropy`` + the authors' complement formula), the same under
  ``torch.compile``, and ``complement.linear_cross_entropy_and_complement`` with
  the Triton backend and with the torch backend.
- CE only (COT's first step; what the other libraries compute): torch eager,
  ``torch.compile``, ``complement.linear_cross_entropy`` (Triton), and, when
  installed, Liger-Kernel's ``LigerFusedLinearCrossEntropyLoss`` and Apple's
  cut-cross-entropy ``linear_cross_entropy``.

Time: median of CUDA-event timings after warm-up. Memory: peak allocated bytes
(``torch.cuda.max_memory_allocated``) above what was allocated before the step.
Writes the ``large_vocab_gpu`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.nn.functional as F

from benchmarks._common import write_section
from complement.losses.linear import linear_cross_entropy, linear_cross_entropy_and_complement
from tests.helpers.references import authors_complement_entropy

HIDDEN = 4096
GRID = [(32000, 4096), (32000, 16384), (128256, 4096), (128256, 16384)]
QUICK_GRID = [(32000, 4096)]
DTYPE = torch.bfloat16


def _eager_joint(h, w, t):
    logits = F.linear(h, w).float()
    return F.cross_entropy(logits, t) + authors_complement_entropy(logits, t, eps=True)


def _eager_ce(h, w, t):
    return F.cross_entropy(F.linear(h, w).float(), t)


def methods() -> dict:
    rows = {
        "joint: torch eager (F.cross_entropy + authors' complement)": _eager_joint,
        "joint: torch.compile of the same": torch.compile(_eager_joint),
        "joint: linear_cross_entropy_and_complement, Triton": lambda h, w, t: sum(
            linear_cross_entropy_and_complement(h, w, t, backend="triton")
        ),
        "joint: linear_cross_entropy_and_complement, torch backend": lambda h, w, t: sum(
            linear_cross_entropy_and_complement(h, w, t, backend="torch")
        ),
        "CE: torch eager": _eager_ce,
        "CE: torch.compile": torch.compile(_eager_ce),
        "CE: linear_cross_entropy, Triton": lambda h, w, t: linear_cross_entropy(h, w, t, backend="triton"),
    }
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss()
        rows["CE: Liger LigerFusedLinearCrossEntropyLoss"] = lambda h, w, t: liger(w, h, t)
    except ImportError:
        print("liger-kernel not installed: its row is left out")
    try:
        from cut_cross_entropy import linear_cross_entropy as cce

        rows["CE: cut-cross-entropy linear_cross_entropy"] = cce
    except ImportError:
        print("cut-cross-entropy not installed: its row is left out")
    return rows


def bench(num_classes: int, rows: int, fns: dict, reps: int):
    g = torch.Generator(device="cuda").manual_seed(0)
    hidden = torch.randn(rows, HIDDEN, device="cuda", dtype=DTYPE, generator=g).requires_grad_()
    weight = (torch.randn(num_classes, HIDDEN, device="cuda", dtype=DTYPE, generator=g) / HIDDEN**0.5).requires_grad_()
    target = torch.randint(0, num_classes, (rows,), device="cuda", generator=g)
    results = {}
    for name, fn in fns.items():

        def run(fn=fn):
            hidden.grad = weight.grad = None
            fn(hidden, weight, target).backward()

        try:
            for _ in range(3):  # warm-up: compilation and autotuning
                run()
            hidden.grad = weight.grad = None
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            run()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - before
            samples = []
            for _ in range(reps):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                run()
                end.record()
                torch.cuda.synchronize()
                samples.append(start.elapsed_time(end))
            results[name] = (statistics.median(samples), peak)
        except torch.cuda.OutOfMemoryError:
            results[name] = (None, None)
            torch.cuda.empty_cache()
        hidden.grad = weight.grad = None
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs an NVIDIA GPU")
    import triton

    fns = methods()
    lines = [
        "## Large vocabulary on GPU: chunked/Triton vs torch eager, torch.compile, Liger, CCE",
        "",
        f"Command: `python -m benchmarks.bench_large_vocab_gpu{' --quick' if args.quick else ''}`. "
        f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}, triton {triton.__version__}. "
        f"bfloat16, H={HIDDEN}, no bias. Joint rows: ratios to the torch eager joint row; "
        "CE rows: ratios to torch eager CE. OOM: out of memory.",
        "",
    ]
    for num_classes, rows in QUICK_GRID if args.quick else GRID:
        results = bench(num_classes, rows, fns, reps=5 if args.quick else 20)
        lines += [
            f"### V={num_classes}, N={rows}",
            "",
            "| method | time (ms) | time / eager | peak extra (MiB) | peak / eager |",
            "|---|---|---|---|---|",
        ]
        for name, (ms, peak) in results.items():
            base_ms, base_peak = results[next(n for n in results if n.split(":")[0] == name.split(":")[0])]
            if ms is None:
                lines.append(f"| {name} | OOM | | | |")
                continue
            ratio = f"{ms / base_ms:.2f}×" if base_ms else "n/a"
            mem_ratio = f"{peak / base_peak:.3f}" if base_peak else "n/a"
            lines.append(f"| {name} | {ms:.2f} | {ratio} | {peak / 2**20:.0f} | {mem_ratio} |")
        lines.append("")
        print("\n".join(lines[-len(results) - 5 :]), flush=True)
    if not args.no_write:
        write_section("large_vocab_gpu", "\n".join(lines))
        print("wrote docs/benchmarks.md (section 'large_vocab_gpu')")


if __name__ == "__main__":
    main()
