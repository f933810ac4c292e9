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
import math
import shlex
import time
from dataclasses import dataclass, replace
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
from .tuning import TUNE_DIR, TuneConfig, TuneSettings, choose, final_metric, refuse_tune_changes, tune_run_name

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
    tune: TuneSettings | None = None  # learning-rate tuning (runs/tuning.py); None: every method at train.lr
    tuned_lr: dict[str, float] | None = None  # each method's chosen rate, once its tuning runs are done
    tuning: dict[str, dict[str, list[float | None]]] | None = None  # method -> rate -> runs' metric (None: diverged)

    def run_dirs(self) -> list[Path]:
        """Every paired run's directory, seed by seed, in the order of ``methods``."""
        return [self.directory / run_dir_name(m, s) for s in range(self.seeds) for m in self.methods]

    def tune_dirs(self) -> list[Path]:
        """The tuning runs' directories made so far."""
        tune = self.directory / TUNE_DIR
        return sorted(p for p in tune.iterdir() if p.is_dir()) if tune.is_dir() else []

    def train_of(self, method: str) -> ResolvedTrainConfig:
        """The training settings of ``method``'s paired runs: its tuned rate, when tuned."""
        if self.tune is None:
            return self.train
        if self.tuned_lr is None or method not in self.tuned_lr:
            raise RuntimeError(f"{method}'s learning rate is not tuned yet (run the comparison to tune it)")
        return replace(self.train, lr=self.tuned_lr[method])

    def save(self) -> None:
        settings = {"task": self.task, "task_options": self.task_options, "methods": self.methods}
        robust = None if self.robust is None else self.robust.to_dict()
        tune = None if self.tune is None else self.tune.to_dict()
        write_json(
            self.directory / COMPARE_FILE,
            {
                **settings,
                "seeds": self.seeds,
                "train": self.train.to_dict(),
                "command": self.command,
                "robust": robust,
                "tune": tune,
                "tuned_lr": self.tuned_lr,
                "tuning": self.tuning,
            },
        )

    def tuning_lines(self) -> list[str]:
        """The report's "Learning-rate tuning" section (empty without tuning)."""
        if self.tune is None or not self.tuning or not self.tuned_lr:
            return []
        from ..report.markdown import tuning_section

        return tuning_section(self.tune.to_dict(), self.tuning, self.tuned_lr)

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
        where = str(directory / COMPARE_FILE)
        robust = RobustSettings.from_saved(saved.get("robust"), where)
        tune = TuneSettings.from_saved(saved.get("tune"), where)
        tuned_lr, tuning = saved.get("tuned_lr"), saved.get("tuning")
        if tune is not None and not (_rates(tuned_lr) and _tuning_results(tuning)):
            raise ValueError(
                f"{where}: the saved tuned learning rates are damaged ({tuned_lr!r}); start a new comparison"
            )
        return cls(directory, saved["task"], saved["task_options"], list(saved["methods"]), int(saved["seeds"]),
                   train, saved["command"], robust, tune, tuned_lr, tuning)  # fmt: skip


def _tuning_results(value: Any) -> bool:
    """``value`` is None or ``{method: {rate text: [metric or None, ...]}}``."""
    if value is None:
        return True

    def number(x: Any) -> bool:
        return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))

    return isinstance(value, dict) and all(
        isinstance(method, str)
        and isinstance(by_rate, dict)
        and all(isinstance(rate, str) and isinstance(v, list) and all(map(number, v)) for rate, v in by_rate.items())
        for method, by_rate in value.items()
    )


def _rates(value: Any) -> bool:
    """``value`` is None (not tuned yet) or a mapping of method names to rates > 0."""
    if value is None:
        return True
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for k, v in value.items()
    )


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
    tune: TuneConfig | None = None,
) -> Comparison:
    """A new comparison's settings and directory; the task is built (and so checked, with the robust
    and tuning settings) before the directory. With ``hold``, the directory's lock is taken as soon as
    it exists, and kept by ``hold``."""
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
    tuning = TuneSettings.resolve(tune)
    directory = new_run_dir(Path(out), f"compare-{task}-{time.strftime('%Y%m%d-%H%M%S')}")
    if hold is not None:
        hold.enter_context(directory_lock(directory, "comparison"))
    comparison = Comparison(directory, task, task_options, methods, seeds, config, command, settings, tuning)
    comparison.save()
    return comparison


def resume_comparison(
    directory: Path,
    task: str | None,
    methods: list[str] | None,
    seeds: int | None,
    train: TrainConfig,
    robust: RobustConfig | None = None,
    tune: TuneConfig | None = None,
) -> Comparison:
    """A saved comparison, grown as asked: more methods, more seeds, another checkpoint interval
    (its robust and tuning settings stay as saved; new methods are tuned too)."""
    saved = Comparison.load(directory)
    refuse_changes(
        {"task": task if task != saved.task else None},
        {"task": saved.task},
        "a comparison",
        "Start a new comparison for another task.",
    )
    refuse_robust_changes(robust or RobustConfig(), saved.robust, "a comparison", saved.directory)
    refuse_tune_changes(tune, saved.tune, saved.directory)
    for run in [*saved.run_dirs(), *saved.tune_dirs()]:
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
    grown = replace(saved, methods=methods, seeds=seeds, train=config)
    grown.save()
    return grown


@dataclass(frozen=True)
class _Plan:
    """What every run of a comparison shares (pickled to worker processes under ``jobs > 1``)."""

    comparison: Comparison
    threads: int | str
    jobs: int


@dataclass(frozen=True)
class _Job:
    """One run to train: a paired run, or a tuning run (``DIR/tune``: its own rate, no robust evaluation,
    a divergence recorded rather than raised)."""

    name: str
    seed: int
    run_dir: Path
    train: ResolvedTrainConfig
    robust: RobustSettings | None
    tuning: bool = False


def run_comparison(
    comparison: Comparison, *, threads: int | str = "auto", jobs: int = 1, progress: bool = False
) -> list[RunRecord]:
    """Every (seed, method) run's record, the finished ones read back; with ``jobs > 1`` several at once.
    With tuning settings, the tuning runs come first and each method's rate is chosen (:mod:`.tuning`)."""
    check_threads(threads)
    check_jobs(jobs)
    plan = _Plan(comparison, threads, jobs)
    if comparison.tune is not None:
        comparison = _tune(plan, progress)
        plan = _Plan(comparison, threads, jobs)
    todo = []
    for seed in range(comparison.seeds):
        for index, name in enumerate(comparison.methods):
            run_dir = comparison.directory / run_dir_name(name, seed)
            todo.append(((seed, index), _Job(name, seed, run_dir, comparison.train_of(name), comparison.robust)))
    records = _run_jobs(plan, todo, progress)
    return [records[key] for key in sorted(records)]  # type: ignore[misc]


def _tune(plan: _Plan, progress: bool) -> Comparison:
    """Run the tuning runs still to run, choose each method's rate and save it in compare.json."""
    c = plan.comparison
    assert c.tune is not None
    todo = []
    for name in c.methods:
        for rate in c.tune.lr:
            for seed in range(c.tune.seeds):
                run_dir = c.directory / TUNE_DIR / tune_run_name(name, rate, seed)
                todo.append(((name, rate, seed), _Job(name, seed, run_dir, replace(c.train, lr=rate), None, True)))
    print(
        f"{c.task}: tuning the learning rate of each method on the validation split ({c.tune.describe()})", flush=True
    )
    records = _run_jobs(plan, todo, progress)
    results: dict[str, dict[float, list[float | None]]] = {}
    for (name, rate, _), record in records.items():
        value = None if record is None else final_metric(record, c.tune.metric)  # None: diverged
        results.setdefault(name, {}).setdefault(rate, []).append(value)
    chosen = {name: choose(results[name], c.tune.metric) for name in c.methods}
    print("tuned learning rates: " + ", ".join(f"{m} {r:g}" for m, r in chosen.items()), flush=True)
    tuned = replace(
        c, tuned_lr=chosen, tuning={m: {f"{r:g}": v for r, v in by_rate.items()} for m, by_rate in results.items()}
    )
    if tuned != c:
        tuned.save()
    return tuned


def _run_jobs(plan: _Plan, todo: list[tuple[Any, _Job]], progress: bool) -> dict[Any, RunRecord | None]:
    """Train the jobs not yet complete (resuming interrupted ones) and read back the others' records."""
    records: dict[Any, RunRecord | None] = {}
    pending = []
    for key, job in todo:
        status = read_status(job.run_dir)
        if status.status == "complete":
            records[key] = load_run_record(job.run_dir)
            continue
        if job.tuning and status.status == "diverged":
            records[key] = None  # a rate too high for the method: the worst score, not a retry
            continue
        resume = status.status is not None
        note = f" (resuming: was {status.status}{'; ' + status.detail if status.detail else ''})" if resume else ""
        pending.append((key, job, resume, note))
    total, task = len(todo), plan.comparison.task
    if plan.jobs == 1:
        for key, job, resume, note in pending:
            print(f"[{len(records) + 1}/{total}] {task}: {_label(job)}{note}", flush=True)
            records[key] = _train_one(plan, job, resume, progress)
    else:
        _train_in_parallel(plan, pending, records, total)
    return records


def _label(job: _Job) -> str:
    return (
        f"{job.name}, lr {job.train.lr:g} (tuning), seed {job.seed}" if job.tuning else f"{job.name}, seed {job.seed}"
    )


def _train_one(plan: _Plan, job: _Job, resume: bool, progress: bool = False) -> RunRecord | None:
    """One run of a comparison (also the body of a parallel worker process); a diverged tuning run gives None."""
    from ...training.stepper import DivergenceError
    from .fit import fit_run  # Lightning is imported only to train

    c = plan.comparison
    # a resumed run keeps the thread count it started with under `auto` (runs/threads.py)
    started = load_spec(job.run_dir).threads_used if resume and (job.run_dir / CONFIG_FILE).exists() else None
    spec = RunSpec(c.task, job.name, job.seed, job.train, dict(c.task_options), plan.threads,
                   started if plan.threads == "auto" else None, job.robust)  # fmt: skip
    job.run_dir.mkdir(parents=True, exist_ok=True)
    save_spec(job.run_dir, spec)
    built = launch.build_task(c.task, c.task_options, job.seed)
    try:
        return fit_run(built, spec, job.run_dir, progress=progress, resume=resume, jobs=plan.jobs)
    except DivergenceError as error:
        if not job.tuning:
            raise
        print(f"{c.task}: {_label(job)} diverged ({error}); that rate scores worst", flush=True)
        return None


def _train_in_parallel(plan: _Plan, todo: list, records: dict, total: int) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    task = plan.comparison.task
    # spawn: a fresh interpreter per worker, never a fork of a process holding torch's threads
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for key, job, resume, note in todo:
            futures[pool.submit(_train_one, plan, job, resume)] = (key, job)
            print(f"queued {task}: {_label(job)}{note}", flush=True)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                key, job = futures[future]
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
                records[key] = future.result()
                print(f"[{len(records)}/{total}] {task}: {_label(job)} done", flush=True)


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
    tune: TuneConfig | None = None,
) -> ReportPaths:
    """Start (or resume) a comparison, tune each method's learning rate when asked, train every run
    (and, with ``robust`` settings, evaluate its robustness), and write its report; ``complement compare``."""
    check_threads(threads)
    check_jobs(jobs)
    train = train or TrainConfig()
    with contextlib.ExitStack() as hold:
        if resume is not None:
            Comparison.load(Path(resume))  # a comparison directory (clear error otherwise) before its lock file
            hold.enter_context(directory_lock(Path(resume), "comparison"))
            hold.enter_context(resume_hint(f"complement compare --resume {shlex.quote(str(resume))}"))
            comparison = resume_comparison(Path(resume), task, methods, seeds, train, robust, tune)
        else:
            comparison = start_comparison(task, methods, seeds, train, task_options, out, command, hold, robust, tune)
            hold.enter_context(resume_hint(f"complement compare --resume {shlex.quote(str(comparison.directory))}"))
        records = run_comparison(comparison, threads=threads, jobs=jobs, progress=progress and jobs == 1)
        comparison = Comparison.load(comparison.directory)  # with the rates tuning chose
        from ..report import write_report  # matplotlib loads only to write the report

        return write_report(records, comparison.directory, task_name=comparison.task, command=comparison.command,
                            sections=comparison.tuning_lines())  # fmt: skip
