"""The ``complement`` command line (jsonargparse: typed options, ``--config`` YAML files).

    complement compare --config configs/mnist.yaml          # baseline vs COT vs equal compute, over seeds
    complement compare --task digits --methods '[ce, cot]' --seeds 3 --train.max_epochs 5
    complement compare --resume runs/compare-mnist-20261123-101500   # finish an interrupted comparison
    complement fit --task mnist --method cot --seed 0        # one run
    complement list                                          # tasks, methods, losses

Every option can come from a YAML file given with ``--config``; a key that does not exist
is an error. Runs go to new directories under ``--out`` (default ``runs``).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jsonargparse import CLI

from .runs import METHODS, TrainConfig, fit_run, get_method, load_run_record, new_run_dir, read_status

COMPARE_FILE = "compare.json"


def _quiet() -> None:
    """Keep the console to progress bars, the table and the report path."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")


def _build_task(task: str, task_options: dict[str, Any], seed: int):
    from .tasks import build_task

    return build_task(task, seed=seed, **task_options)


def fit(
    task: str = "mnist",
    method: str = "cot",
    seed: int = 0,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (jsonargparse reads the default)
    task_options: dict[str, Any] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
) -> None:
    """Train one run of a task with a method; print its test metrics and directory.

    Args:
        task: a task name (``complement list`` shows them).
        method: how to train: ce, cot, cot_joint, ce_2x, gce, cce, ls, focal.
        seed: seed of the data split, initialization and shuffling.
        train: hyper-parameters; unset ones take the task's defaults.
        task_options: task keyword arguments, e.g. ``{label_noise: 0.2, data_path: my.csv}``.
        out: parent directory of the run directory.
        resume: an earlier run directory to continue from its last checkpoint.
        progress: show Lightning's progress bars.
    """
    _quiet()
    if resume is not None:
        resume = Path(resume)
        saved = json.loads((resume / "config.json").read_text()) if (resume / "config.json").exists() else None
        if saved is None:
            raise FileNotFoundError(f"{resume} is not a run directory (no config.json); pass a directory made by fit")
        task, method, seed = saved.pop("task"), saved.pop("method"), saved.pop("seed")
        task_options = saved.pop("task_options", {})
        train = TrainConfig(**saved)
        run_dir = resume
    else:
        get_method(method)
        run_dir = new_run_dir(Path(out), f"{task}-{method}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    task_options = task_options or {}
    built = _build_task(task, task_options, seed)
    record = fit_run(
        built,
        method,
        seed,
        run_dir,
        train,
        progress=progress,
        resume=resume is not None,
        task_spec={"task": task, "task_options": task_options},
    )
    print(json.dumps(record.test, indent=2))
    print(f"run directory: {run_dir}")


def compare(
    task: str = "mnist",
    methods: list[str] = ["ce", "cot", "ce_2x"],  # noqa: B006 (jsonargparse reads the default)
    seeds: int = 3,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (jsonargparse reads the default)
    task_options: dict[str, Any] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
) -> None:
    """Train each method over several seeds on one task; write report.md with tables and figures.

    Args:
        task: a task name (``complement list`` shows them).
        methods: methods to compare; ``ce_2x`` is cross-entropy with COT's number of passes.
        seeds: number of seeds (0, 1, ...) per method.
        train: hyper-parameters shared by all methods; unset ones take the task's defaults.
        task_options: task keyword arguments, e.g. ``{label_noise: 0.2}``.
        out: parent directory of the comparison directory.
        resume: an interrupted comparison directory to finish (its saved settings are used).
        progress: show Lightning's progress bars.
    """
    from .report import write_report

    _quiet()
    if resume is not None:
        compare_dir = Path(resume)
        if not (compare_dir / COMPARE_FILE).exists():
            raise FileNotFoundError(f"{compare_dir} is not a comparison directory (no {COMPARE_FILE})")
        saved = json.loads((compare_dir / COMPARE_FILE).read_text())
        task, methods, seeds = saved["task"], saved["methods"], saved["seeds"]
        task_options, train = saved["task_options"], TrainConfig(**saved["train"])
        command = saved["command"]
    else:
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1; got {seeds}")
        if not methods:
            raise ValueError("methods is empty; name at least one, e.g. [ce, cot]")
        for name in methods:
            get_method(name)
        task_options = task_options or {}
        _build_task(task, task_options, 0)  # fail fast on a bad task or data file, before any directory is made
        compare_dir = new_run_dir(Path(out), f"compare-{task}-{time.strftime('%Y%m%d-%H%M%S')}")
        command = "complement " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
        (compare_dir / COMPARE_FILE).write_text(
            json.dumps(
                {
                    "task": task,
                    "methods": methods,
                    "seeds": seeds,
                    "task_options": task_options,
                    "train": asdict(train),
                    "command": command,
                },
                indent=2,
            )
        )
    records = []
    for seed in range(seeds):
        built = _build_task(task, task_options, seed)
        for name in methods:
            run_dir = compare_dir / f"{name}-seed{seed}"
            status = read_status(run_dir)
            if status == "complete":
                records.append(load_run_record(run_dir))
                continue
            run_dir.mkdir(exist_ok=True)
            print(f"[{len(records) + 1}/{seeds * len(methods)}] {task}: {name}, seed {seed}", flush=True)
            records.append(fit_run(built, name, seed, run_dir, train, progress=progress, resume=status is not None))
    paths = write_report(records, compare_dir, task_name=task, command=command)
    print()
    print(paths.console_table)
    print(f"\nreport: {paths.report}")


def list_all() -> None:
    """List the tasks, the methods and the losses."""
    from .losses import available_losses
    from .tasks import available_tasks

    for title, items in (
        ("tasks", available_tasks()),
        ("methods", {name: m.summary for name, m in METHODS.items()}),
        ("losses", available_losses()),
    ):
        print(f"{title}:")
        for name, summary in items.items():
            print(f"  {name:28s} {summary}")


def main(args: list[str] | None = None) -> None:
    CLI({"fit": fit, "compare": compare, "list": list_all}, args=args, as_positional=False)


if __name__ == "__main__":
    main()
