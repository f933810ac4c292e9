"""How many CPU threads a run's torch ops use: picked from the model's size and the idle cores, unless set.

torch's default is one intra-op thread per core. Measured on the 2-core machine of
docs/benchmarks.md (section ``threads``), for every built-in task:

* on a quiet machine, both cores were as fast or faster (``tweets_lm`` 1.6x, MLPs up to
  1.4x, the 9,610-parameter ``digits`` model 1.0x: its ops are too small to split);
* with one core kept busy by another process, both cores were 1.7x (``tweets_lm``) to 3.6x
  (MLPs) *slower* than one: OpenMP's threads wait for each other at every op, so one
  descheduled thread stalls them all.

What matters is whether the cores are free, not the model, so ``auto`` gives a run the
cores that are idle when it starts (read from ``/proc/stat`` over :data:`IDLE_SAMPLE_S`; all
cores where that file does not exist), shared among the ``jobs`` of a ``compare``, and at
least one. Models under :data:`AUTO_ONE_THREAD_BELOW` trainable parameters always get one:
threads gained them nothing on a quiet machine, and one thread keeps their runs
independent of the machine's load.

Results can differ in the last bits between thread counts (reductions split differently),
so the count a run used is recorded as ``threads_used`` in its ``config.json``, and a run
resumed with ``auto`` keeps it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from torch import nn

# Trainable parameters below which ``auto`` uses one thread whatever the load: the smallest
# built-in model (digits, 9,610) ran as fast on one thread as on two (docs/benchmarks.md, "threads").
AUTO_ONE_THREAD_BELOW = 50_000
IDLE_SAMPLE_S = 0.2  # long enough for the kernel's tick counters (100 Hz) to move, short beside a run
PROC_STAT = Path("/proc/stat")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times(stat_text: str) -> dict[int, tuple[int, int]]:
    """``cpuN -> (idle ticks, all ticks)`` from the text of ``/proc/stat`` (idle includes iowait)."""
    times = {}
    for line in stat_text.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(field) for field in fields[:8]]  # user nice system idle iowait irq softirq steal
        times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return times


def idle_cores(sample_s: float = IDLE_SAMPLE_S) -> float | None:
    """How many of this process's cores were idle over ``sample_s`` seconds; None where /proc/stat is absent."""
    try:
        before = _cpu_times(PROC_STAT.read_text())
        time.sleep(sample_s)
        after = _cpu_times(PROC_STAT.read_text())
        mine = os.sched_getaffinity(0)
    except (OSError, AttributeError, ValueError, IndexError):
        return None
    idle = 0.0
    for cpu in mine:
        if cpu not in before or cpu not in after:
            return None
        total = after[cpu][1] - before[cpu][1]
        idle += (after[cpu][0] - before[cpu][0]) / total if total > 0 else 1.0
    return idle


def check_threads(setting: Any) -> None:
    if setting == "auto":
        return
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"threads must be 'auto' or an integer >= 1; got {setting!r}")


def resolve_threads(setting: int | str, model: nn.Module, jobs: int = 1, idle: float | None = None) -> int:
    """The thread count for ``model`` under ``setting`` ("auto" or a count), sharing the cores among ``jobs``.

    ``idle`` is the count of idle cores (measured with :func:`idle_cores` when None).
    """
    check_threads(setting)
    if setting != "auto":
        return int(setting)
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if parameters < AUTO_ONE_THREAD_BELOW:
        return 1
    share = max(1, available_cores() // max(1, jobs))
    if share == 1:  # nothing to choose: skip the measurement's sleep
        return 1
    if idle is None:
        idle = idle_cores()
    if idle is None:
        return share
    return max(1, min(share, round(idle)))
