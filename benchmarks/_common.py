"""Shared by the benchmark scripts: machine description, timing, peak memory, docs section."""

from __future__ import annotations

import gc
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, torch {torch.__version__}, Python {platform.python_version()}"


# glibc's defaults return freed memory to the OS and page-fault it back on the next
# step; how much each timed arm pays for that changes from process to process and
# swamped the ratios (e.g. 2.15x vs 2.03x for the same code). See docs/training.md.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def steady_allocator() -> bool:
    """Re-run this script with :data:`STEADY_MALLOC` in its environment (Linux only).

    Returns ``True`` once it runs with them, ``False`` where they do not apply."""
    if not sys.platform.startswith("linux"):
        return False
    if all(os.environ.get(name) == value for name, value in STEADY_MALLOC.items()):
        return True
    rerun_with(STEADY_MALLOC)
    return True  # not reached


def rerun_with(environment: dict[str, str]) -> None:
    """Replace this process by the same benchmark (``python -m benchmarks.X``) with ``environment`` added."""
    sys.stdout.flush()
    module = sys.modules["__main__"].__spec__.name  # run as a module, from the repository root
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], {**os.environ, **environment})


def interleaved_medians(fns: dict[str, Callable[[], None]], reps: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call, running the functions round-robin so noise hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def peak_extra_bytes(fn: Callable[[], None]) -> int | None:
    """Peak resident memory that ``fn`` adds above what is resident before it (Linux only).

    Writing 5 to /proc/self/clear_refs resets the high-water mark; large tensors are
    mmap'd by the allocator and returned on free, so the peak is the real one."""
    try:
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status_kib("VmRSS")
    fn()
    return max(0, _status_kib("VmHWM") - before) * 1024


def write_section(name: str, body: str) -> None:
    """Replace the ``name`` section of docs/benchmarks.md, keeping the other sections."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\nEach section is written by the script it names.\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)
