"""A comparison: every method trained over paired seeds on one task, in one directory.

The directory holds ``compare.json`` (task, options, methods, seeds, resolved train settings,
the robust settings if any, and the command that started it), one run directory per (method,
seed) named by :func:`~.launch.run_dir_name`, and the report. A comparison resumes after any
kill: finished runs are read back, interrupted ones continue from their checkpoints, and it
may grow (more seeds, more methods) but never change what it measured. Its robust settings
change only through ``complement robust DIR`` (:mod:`.robust`), which evaluates the finished
runs again and saves them for the runs still to come.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._atomic import remove_stale_temporaries, write_json
from ..report.records import RunRecord
from . import launch
from . import robust as robustness
from .adversarial import adversarial_training
from .config import ResolvedTrainConfig, RobustConfig, RobustSettings, TrainConfig, refuse_robust_changes, resumed
from .files import CONFIG_FILE, RunSpec, check_output_directory, load_run_record, load_spec, new_run_dir, save_spec
from .launch import DEFAULT_TASK, read_settings, refuse_changes, refuse_if_running, resume_hint, run_dir_name
from .lock import directory_lock
from .methods import get_method
from .status import read_status
from .threads import check_threads

if TYPE_CHECKING:
    from ..report.compare import ReportPaths

COMPARE_FILE = "compare.json"
DEFAULT_METHODS, DEFAULT_SEEDS = ("ce", "cot", "ce_2x"), 3
MAX_SEEDS = 1000  # one run per (method, seed): more would take months, and is surely a typo
FIGURES_DIR = "figures"  # report/compare.py's FIGURES_DIR (not imported: matplotlib loads only to write the report)
_SAVED_KEYS = ("task", "task_options", "methods", "seeds", "train", "command")


@dataclass(frozen=True)
class Comparison:
    """What a comparison measures, as saved in its ``compare.json``."""

    directory: Path
    task: str
    task_options: dict[str, Any]
    methods: list[str]
    seeds: int
    train: ResolvedTrainConfig
    command: str
    robust: RobustSettings | None = None  # evaluated after training (runs/robust.py); None in older files

    def run_dirs(self) -> list[Path]:
        """Every run's directory, seed by seed, in the order of ``methods``."""
        return [self.directory / run_dir_name(m, s) for s in range(self.seeds) for m in self.methods]

    def save(self) -> None:
        settings = {"task": self.task, "task_options": self.task_options, "methods": self.methods}
        robust = None if self.robust is None else self.robust.to_dict()
        write_json(
            self.directory / COMPARE_FILE,
            {**settings, "seeds": self.seeds, "train": self.train.to_dict(), "command": self.command, "robust": robust},
        )

    @classmethod
    def load(cls, directory: Path) -> Comparison:
        directory = Path(directory)
        saved = read_settings(directory / COMPARE_FILE, "comparison")
        missing = sorted(set(_SAVED_KEYS) - set(saved))
        if missing:
            raise ValueError(
                f"{directory / COMPARE_FILE} lacks {missing}; it cannot be resumed. Start a new comparison."
            )
        train = ResolvedTrainConfig.from_saved(dict(saved["train"]), str(directory / COMPARE_FILE))
        robust = RobustSettings.from_saved(saved.get("robust"), str(directory / COMPARE_FILE))
        return cls(directory, saved["task"], saved["task_options"], list(saved["methods"]), int(saved["seeds"]),
                   train, saved["command"], robust)  # fmt: skip


def check_methods_and_seeds(methods: list[str], seeds: int) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1; got {seeds!r}")
    if seeds > MAX_SEEDS:
        raise ValueError(
            f"seeds={seeds} is more than the {MAX_SEEDS} a comparison allows (one run per method and seed); "
            "give a smaller --seeds, e.g. --seeds 5"
        )
    if not methods:
        raise ValueError("methods is empty; name at least one, e.g. [ce, cot]")
    for name in methods:
        get_method(name)
    repeated = sorted({name for name in methods if methods.count(name) > 1})
    if repeated:
        raise ValueError(f"methods lists {repeated} more than once; name each method once")


def check_jobs(jobs: Any) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1; got {jobs!r}")


def start_comparison(
    task: str | None,
    methods: list[str] | None,
    seeds: int | None,
    train: TrainConfig,
    task_options: dict[str, Any] | None,
    out: Path,
    command: str,
    hold: contextlib.ExitStack | None = None,
    robust: RobustConfig | None = None,
) -> Comparison:
    """A new comparison's settings and directory; the task is built (and so checked, with the robust
    settings) before the directory. With ``hold``, the directory's lock is taken as soon as it exists,
    and kept by ``hold``."""
    task, methods = task or DEFAULT_TASK, list(methods if methods is not None else DEFAULT_METHODS)
    seeds = DEFAULT_SEEDS if seeds is None else seeds
    check_methods_and_seeds(methods, seeds)
    check_output_directory(Path(out))
    task_options = dict(task_options or {})
    launch.check_task_options(task_options)
    built = launch.build_task(task, task_options, 0)
    config = train.resolved(built.defaults)
    config.check_milestones_apply()
    for method in methods:
        adversarial_training(method, config, built)
    settings = robustness.resolve(robust, built)
    directory = new_run_dir(Path(out), f"compare-{task}-{time.strftime('%Y%m%d-%H%M%S')}")
    if hold is not None:
        hold.enter_context(directory_lock(directory, "comparison"))
    comparison = Comparison(directory, task, task_options, methods, seeds, config, command, settings)
    comparison.save()
    return comparison


def resume_comparison(
    directory: Path,
    task: str | None,
    methods: list[str] | None,
    seeds: int | None,
    train: TrainConfig,
    robust: RobustConfig | None = None,
) -> Comparison:
    """A saved comparison, grown as asked: more methods, more seeds, another checkpoint interval
    (its robust settings stay as saved)."""
    saved = Comparison.load(directory)
    refuse_changes(
        {"task": task if task != saved.task else None},
        {"task": saved.task},
        "a comparison",
        "Start a new comparison for another task.",
    )
    refuse_robust_changes(robust or RobustConfig(), saved.robust, "a comparison", saved.directory)
    for run in saved.run_dirs():
        refuse_if_running(run)
    # a kill while compare.json or the report was written leaves its temporary file behind
    # (each run removes its own when it resumes)
    for folder in (saved.directory, saved.directory / FIGURES_DIR):
        if folder.is_dir():
            remove_stale_temporaries(folder, recursive=False)
    methods = saved.methods + [m for m in (methods or []) if m not in saved.methods]
    seeds = max(saved.seeds, seeds or 0)
    check_methods_and_seeds(methods, seeds)
    config = resumed(saved.train, train, ("checkpoint_every_n_steps",), "a comparison")
    added_adversarial = [m for m in methods if m not in saved.methods and get_method(m).adversarial is not None]
    if added_adversarial:  # checked against the task before compare.json takes them
        built = launch.build_task(saved.task, saved.task_options, 0)
        for method in added_adversarial:
            adversarial_training(method, config, built)
    grown = Comparison(saved.directory, saved.task, saved.task_options, methods, seeds, config, saved.command,
                       saved.robust)  # fmt: skip
    grown.save()
    return grown


@dataclass(frozen=True)
class _Plan:
    """What every run of a comparison shares (pickled to worker processes under ``jobs > 1``)."""

    comparison: Comparison
    threads: int | str
    jobs: int


def run_comparison(
    comparison: Comparison, *, threads: int | str = "auto", jobs: int = 1, progress: bool = False
) -> list[RunRecord]:
    """Every (seed, method) run's record, the finished ones read back; with ``jobs > 1`` several at once."""
    check_threads(threads)
    check_jobs(jobs)
    plan = _Plan(comparison, threads, jobs)
    records: dict[tuple[int, int], RunRecord] = {}
    todo = []
    for seed in range(comparison.seeds):
        for index, name in enumerate(comparison.methods):
            run_dir = comparison.directory / run_dir_name(name, seed)
            status = read_status(run_dir)
            if status.status == "complete":
                records[(seed, index)] = load_run_record(run_dir)
                continue
            resume = status.status is not None
            note = f" (resuming: was {status.status}{'; ' + status.detail if status.detail else ''})" if resume else ""
            todo.append(((seed, index), name, seed, resume, note))
    total = comparison.seeds * len(comparison.methods)
    if jobs == 1:
        for key, name, seed, resume, note in todo:
            print(f"[{len(records) + 1}/{total}] {comparison.task}: {name}, seed {seed}{note}", flush=True)
            records[key] = _train_one(plan, name, seed, resume, progress)
    else:
        _train_in_parallel(plan, todo, records, total)
    return [records[key] for key in sorted(records)]


def _train_one(plan: _Plan, name: str, seed: int, resume: bool, progress: bool = False) -> RunRecord:
    """One run of a comparison (also the body of a parallel worker process)."""
    from .fit import fit_run  # Lightning is imported only to train

    c = plan.comparison
    run_dir = c.directory / run_dir_name(name, seed)
    # a resumed run keeps the thread count it started with under `auto` (runs/threads.py)
    started = load_spec(run_dir).threads_used if resume and (run_dir / CONFIG_FILE).exists() else None
    spec = RunSpec(c.task, name, seed, c.train, dict(c.task_options), plan.threads,
                   started if plan.threads == "auto" else None, c.robust)  # fmt: skip
    run_dir.mkdir(exist_ok=True)
    save_spec(run_dir, spec)
    built = launch.build_task(c.task, c.task_options, seed)
    return fit_run(built, spec, run_dir, progress=progress, resume=resume, jobs=plan.jobs)


def _train_in_parallel(plan: _Plan, todo: list, records: dict, total: int) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    task = plan.comparison.task
    # spawn: a fresh interpreter per worker, never a fork of a process holding torch's threads
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for key, name, seed, resume, note in todo:
            futures[pool.submit(_train_one, plan, name, seed, resume)] = (key, name, seed)
            print(f"queued {task}: {name}, seed {seed}{note}", flush=True)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                key, name, seed = futures[future]
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
                records[key] = future.result()
                print(f"[{len(records)}/{total}] {task}: {name}, seed {seed} done", flush=True)


def compare(
    task: str | None = None,
    methods: list[str] | None = None,
    seeds: int | None = None,
    train: TrainConfig | None = None,
    task_options: dict[str, Any] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    *,
    threads: int | str = "auto",
    jobs: int = 1,
    progress: bool = False,
    command: str = "",
    robust: RobustConfig | None = None,
) -> ReportPaths:
    """Start (or resume) a comparison, train every run (and, with ``robust`` settings, evaluate its
    robustness), and write its report; ``complement compare``."""
    check_threads(threads)
    check_jobs(jobs)
    train = train or TrainConfig()
    with contextlib.ExitStack() as hold:
        if resume is not None:
            Comparison.load(Path(resume))  # a comparison directory (clear error otherwise) before its lock file
            hold.enter_context(directory_lock(Path(resume), "comparison"))
            hold.enter_context(resume_hint(f"complement compare --resume {shlex.quote(str(resume))}"))
            comparison = resume_comparison(Path(resume), task, methods, seeds, train, robust)
        else:
            comparison = start_comparison(task, methods, seeds, train, task_options, out, command, hold, robust)
            hold.enter_context(resume_hint(f"complement compare --resume {shlex.quote(str(comparison.directory))}"))
        records = run_comparison(comparison, threads=threads, jobs=jobs, progress=progress and jobs == 1)
        from ..report import write_report  # matplotlib loads only to write the report

        return write_report(records, comparison.directory, task_name=comparison.task, command=comparison.command)
