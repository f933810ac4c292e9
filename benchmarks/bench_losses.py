"""Forward+backward time and peak memory of each loss, as a ratio to F.cross_entropy.

Run:  python -m benchmarks.bench_losses [--quick] [--no-write]

Every ratio divides by F.cross_entropy measured in the same run on the same logits,
timed round-robin. "extra peak" is the resident memory one forward+backward adds
above the logits, in units of one N x K float32 tensor (the gradient itself is one).
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

import complement
from benchmarks._common import interleaved_medians, machine, peak_extra_bytes, rerun_with, write_section
from tests.helpers.references import authors_complement_entropy

GRID = [(256, 10), (4096, 1000), (2048, 32000)]


def _eager(fn):
    def run(z, t):
        previous = os.environ.get("COMPLEMENT_KERNELS")
        os.environ["COMPLEMENT_KERNELS"] = "eager"
        try:
            return fn(z, t)
        finally:
            if previous is None:
                del os.environ["COMPLEMENT_KERNELS"]
            else:
                os.environ["COMPLEMENT_KERNELS"] = previous

    return run


LOSSES = {
    "F.cross_entropy": F.cross_entropy,
    "authors' ComplementEntropy": lambda z, t: authors_complement_entropy(z, t, eps=True),
    "complement_entropy": complement.complement_entropy,
    "complement_entropy (eager ops)": _eager(complement.complement_entropy),
    "CE + complement, one pass": lambda z, t: sum(complement.cross_entropy_and_complement_entropy(z, t)),
    "guided_complement_entropy": complement.guided_complement_entropy,
    "complement_cross_entropy": complement.complement_cross_entropy,
    "focal_loss": complement.focal_loss,
    "label smoothing (torch)": lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1),
}


def bench(n: int, k: int, reps: int):
    logits = torch.randn(n, k, requires_grad=True)
    target = torch.randint(0, k, (n,))

    def step(loss):
        def run():
            logits.grad = None
            loss(logits, target).backward()

        return run

    steps = {name: step(loss) for name, loss in LOSSES.items()}
    times = interleaved_medians(steps, reps)
    tensor_bytes = n * k * 4
    memory = {}
    for name, run in steps.items():
        logits.grad = None
        extra = peak_extra_bytes(run)
        memory[name] = None if extra is None else extra / tensor_bytes
    return times, memory


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # A fixed threshold stops glibc from recycling large freed blocks on the heap,
        # so every N x K tensor is mmap'd and shows up in the resident peak.
        rerun_with({"MALLOC_MMAP_THRESHOLD_": "131072"})
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    torch.manual_seed(0)
    lines = [
        "## Complement losses: forward + backward vs `F.cross_entropy`",
        "",
        f"Command: `python -m benchmarks.bench_losses`. Machine: {machine()}. "
        "Kernel mode: `COMPLEMENT_KERNELS=auto` (compiled for logits of at least 65,536 elements, eager below); "
        "the `(eager ops)` row forces plain torch ops.",
        "",
        "Time and extra peak memory as ratios to `F.cross_entropy` in the same run (memory: extra resident peak "
        "of one forward+backward, in units of one N×K float32 tensor; the gradient alone is 1.0).",
        "",
    ]
    for n, k in GRID:
        reps = (5 if args.quick else 15) if n * k > 10**6 else (50 if args.quick else 200)
        times, memory = bench(n, k, reps)
        base = times["F.cross_entropy"]
        lines += [
            f"### N={n}, K={k} (F.cross_entropy: {base * 1e3:.3f} ms, median of {reps})",
            "",
            "| loss | time / CE | extra peak (N×K tensors) |",
            "|---|---|---|",
        ]
        for name in LOSSES:
            mem = "n/a" if memory[name] is None else f"{memory[name]:.2f}"
            lines.append(f"| {name} | {times[name] / base:.2f}× | {mem} |")
        lines.append("")
        print("\n".join(lines[-len(LOSSES) - 5 :]), flush=True)
    if not args.no_write:
        write_section("losses", "\n".join(lines))
        print("wrote docs/benchmarks.md (section 'losses')")


if __name__ == "__main__":
    main()
