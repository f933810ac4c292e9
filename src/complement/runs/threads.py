"""How many CPU threads a run's torch ops use: picked by model size unless set.

torch's default is one intra-op thread per core. For a small model each op is too short
to split well, and the threads' synchronization costs more than it saves: on the 2-core
machine of docs/benchmarks.md, ``complement fit --task mnist --method ce`` ran 1.4x
faster with one thread (section ``threads``, where the crossover was measured). Large
models (MiniLM) gain from every core. ``auto`` therefore uses one thread below
:data:`AUTO_ONE_THREAD_BELOW` trainable parameters and all cores from there, and a
``compare`` running ``jobs`` runs at once gives each ``cores // jobs`` threads.

Results can differ in the last bits between thread counts (reductions split
differently), so the count a run used is recorded in its ``config.json``.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

# Trainable parameters below which one thread was faster on every built-in task measured
# (docs/benchmarks.md, section "threads").
AUTO_ONE_THREAD_BELOW = 2_000_000


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_threads(setting: Any) -> None:
    if setting == "auto":
        return
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"threads must be 'auto' or an integer >= 1; got {setting!r}")


def resolve_threads(setting: int | str, model: nn.Module, jobs: int = 1) -> int:
    """The thread count for ``model`` under ``setting`` ("auto" or a count), sharing the cores among ``jobs``."""
    check_threads(setting)
    if setting != "auto":
        return int(setting)
    cores = max(1, available_cores() // max(1, jobs))
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return 1 if parameters < AUTO_ONE_THREAD_BELOW else cores
