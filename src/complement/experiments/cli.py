"""The ``complement`` command line (jsonargparse: typed options, ``--config`` YAML files).

    complement compare --config configs/mnist.yaml          # baseline vs COT vs equal compute, over seeds
    complement compare --task digits --methods '[ce, cot]' --seeds 3 --train.max_epochs 5
    complement compare --resume runs/compare-mnist-20261123-101500   # finish an interrupted comparison
    complement fit --task mnist --method cot --seed 0        # one run
    complement fit --resume runs/mnist-cot-seed0-...  --train.max_epochs 20   # continue, and train longer
    complement status runs/compare-mnist-20261123-101500     # which runs are running, done, dead
    complement list                                          # tasks, methods, losses

Every option can come from a YAML file given with ``--config``; a key that does not exist
is an error. Runs go to new directories under ``--out`` (default ``runs``); everything
is checked before a directory is made. A user error prints one line and exits with
status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import CLI

from .._atomic import write_json
from .runs.config import RESUME_CHANGES, ResolvedTrainConfig, TrainConfig, resumed
from .runs.files import CONFIG_FILE, RunSpec, check_output_directory, load_run_record, load_spec, new_run_dir, save_spec
from .runs.methods import METHODS, get_method
from .runs.status import read_status
from .runs.threads import check_threads

COMPARE_FILE = "compare.json"
DEFAULT_TASK, DEFAULT_METHOD, DEFAULT_METHODS, DEFAULT_SEEDS = "mnist", "cot", ["ce", "cot", "ce_2x"], 3


def _quiet() -> None:
    """Keep the console to progress bars, the table and the report path."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")


def _build_task(task: str, task_options: dict[str, Any], seed: int):
    from .tasks import build_task

    return build_task(task, seed=seed, **task_options)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A settings file of a run or comparison, with a clear error when it is missing or damaged."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path.parent} is not a {what} directory (no {path.name})") from None
    except ValueError as error:
        raise ValueError(f"{path} is damaged ({error}); it cannot be resumed. Start a new {what}.") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a {what}'s settings; it cannot be resumed")
    return data


def _check_seed(name: str, seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be an integer in [0, 2**32) (numpy's seed range); got {seed!r}")


def _refuse_if_running(run_dir: Path) -> None:
    status = read_status(run_dir)
    if status.alive:
        raise RuntimeError(f"{run_dir} is still running ({status.detail}); stop it before resuming")


def _refuse_changes(given: dict[str, Any], saved: dict[str, Any], what: str, allowed: str) -> None:
    changed = {key: value for key, value in given.items() if value is not None and value != saved.get(key)}
    if changed:
        listed = ", ".join(f"--{key} {value!r} (saved: {saved.get(key)!r})" for key, value in changed.items())
        raise ValueError(f"--resume continues {what} as saved; {listed} would change it. {allowed}")


def fit(
    task: str | None = None,
    method: str | None = None,
    seed: int | None = None,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (jsonargparse reads the default)
    task_options: dict[str, Any] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
    threads: int | str = "auto",
) -> None:
    """Train one run of a task with a method; print its test metrics and directory.

    Args:
        task: a task name (``complement list`` shows them); default mnist.
        method: how to train: ce, cot, cot_joint, ce_2x, gce, cce, ls, focal, gen_ce, mae; default cot.
        seed: seed of the data split, initialization and shuffling; default 0.
        train: hyper-parameters; unset ones take the task's defaults.
        task_options: task keyword arguments, e.g. ``{label_noise: 0.2, data_path: my.csv}``.
        out: parent directory of the run directory.
        resume: an earlier run directory to continue from its newest checkpoint. Its task, method,
            seed and settings are kept; ``--train.max_epochs`` (to train longer) and
            ``--train.checkpoint_every_n_steps`` may change.
        progress: show Lightning's progress bars.
        threads: CPU threads for torch: ``auto`` (the cores idle at the start, one for models under
            50,000 parameters; see docs/benchmarks.md, "Threads") or a count. Recorded in the run's
            config.json; a run resumed with ``auto`` keeps its count.
    """
    _quiet()
    check_threads(threads)
    if resume is not None:
        run_dir = Path(resume)
        spec = load_spec(run_dir)
        _refuse_changes(
            {"task": task, "method": method, "seed": seed, "task_options": task_options},
            {"task": spec.task, "method": spec.method, "seed": spec.seed, "task_options": spec.task_options},
            "a run",
            "Start a new run to change them.",
        )
        _refuse_if_running(run_dir)
        spec = RunSpec(spec.task, spec.method, spec.seed, resumed(spec.train, train, tuple(RESUME_CHANGES), "a run"),
                       spec.task_options, threads, spec.threads_used if threads == "auto" else None)  # fmt: skip
        built = _build_task(spec.task, spec.task_options, spec.seed)
        save_spec(run_dir, spec)
    else:
        task, method = task or DEFAULT_TASK, method or DEFAULT_METHOD
        seed = 0 if seed is None else seed
        _check_seed("seed", seed)
        get_method(method)
        check_output_directory(Path(out))
        options = dict(task_options or {})
        built = _build_task(task, options, seed)  # validates the task, its options and its data first
        spec = RunSpec(task, method, seed, train.resolved(built.defaults), options, threads)
        run_dir = new_run_dir(Path(out), f"{task}-{method}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
        save_spec(run_dir, spec)
    from .runs.fit import fit_run  # Lightning is imported only to train

    record = fit_run(built, spec, run_dir, progress=progress, resume=resume is not None)
    print(json.dumps(record.test, indent=2))
    print(f"run directory: {run_dir}")


def compare(
    task: str | None = None,
    methods: list[str] | None = None,
    seeds: int | None = None,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (jsonargparse reads the default)
    task_options: dict[str, Any] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
    threads: int | str = "auto",
    jobs: int = 1,
) -> None:
    """Train each method over several seeds on one task; write report.md with tables and figures.

    Args:
        task: a task name (``complement list`` shows them); default mnist.
        methods: methods to compare (default ``[ce, cot, ce_2x]``); ``ce_2x`` is cross-entropy with
            COT's number of passes.
        seeds: number of seeds (0, 1, ...) per method; default 3.
        train: hyper-parameters shared by all methods; unset ones take the task's defaults.
        task_options: task keyword arguments, e.g. ``{label_noise: 0.2}``.
        out: parent directory of the comparison directory.
        resume: an interrupted comparison directory to finish with its saved settings. It may
            grow: more ``--seeds``, more ``--methods``, and ``--train.checkpoint_every_n_steps``.
        progress: show Lightning's progress bars.
        threads: CPU threads per run (``auto`` or a count; see ``fit``).
        jobs: runs trained at once, each in its own process (the cores are shared among them under
            ``threads: auto``); the results are those of ``jobs: 1`` with the same thread count.
    """
    _quiet()
    check_threads(threads)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1; got {jobs!r}")
    if resume is not None:
        compare_dir = Path(resume)
        saved = _load_comparison(compare_dir)
        task, task_options = saved["task"], saved["task_options"]
        methods, seeds, config = _grown(saved, methods, seeds, train, task_options, task, compare_dir)
        command = saved["command"]
    else:
        task, methods = task or DEFAULT_TASK, list(methods if methods is not None else DEFAULT_METHODS)
        seeds = DEFAULT_SEEDS if seeds is None else seeds
        _check_comparison(methods, seeds)
        check_output_directory(Path(out))
        task_options = dict(task_options or {})
        config = train.resolved(_build_task(task, task_options, 0).defaults)  # checks the task before any directory
        compare_dir = new_run_dir(Path(out), f"compare-{task}-{time.strftime('%Y%m%d-%H%M%S')}")
        command = "complement " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    _save_comparison(compare_dir, task, task_options, methods, seeds, config, command)
    plan = Plan(compare_dir, task, task_options, config, threads, jobs)
    records = _run_comparison(plan, methods, seeds, progress and jobs == 1)
    from .report import write_report

    paths = write_report(records, compare_dir, task_name=task, command=command)
    print()
    print(paths.console_table)
    print(f"\nreport: {paths.report}")


def _check_comparison(methods: list[str], seeds: int) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1; got {seeds!r}")
    if not methods:
        raise ValueError("methods is empty; name at least one, e.g. [ce, cot]")
    for name in methods:
        get_method(name)
    repeated = sorted({name for name in methods if methods.count(name) > 1})
    if repeated:
        raise ValueError(f"methods lists {repeated} more than once; name each method once")


def _load_comparison(compare_dir: Path) -> dict[str, Any]:
    saved = _read_json(compare_dir / COMPARE_FILE, "comparison")
    missing = sorted({"task", "methods", "seeds", "task_options", "train", "command"} - set(saved))
    if missing:
        raise ValueError(f"{compare_dir / COMPARE_FILE} lacks {missing}; it cannot be resumed. Start a new comparison.")
    return saved


def _grown(saved, methods, seeds, train: TrainConfig, task_options, task, compare_dir):
    """A resumed comparison's methods, seeds and settings: the saved ones, grown as asked."""
    _refuse_changes(
        {"task": task if task != saved["task"] else None},
        {"task": saved["task"]},
        "a comparison",
        "Start a new comparison for another task.",
    )
    for run in sorted(Path(compare_dir).glob("*-seed*")):
        _refuse_if_running(run)
    methods = list(saved["methods"]) + [m for m in (methods or []) if m not in saved["methods"]]
    seeds = max(int(saved["seeds"]), seeds or 0)
    _check_comparison(methods, seeds)
    config = ResolvedTrainConfig.from_saved(dict(saved["train"]), str(compare_dir / COMPARE_FILE))
    config = resumed(config, train, ("checkpoint_every_n_steps",), "a comparison")
    return methods, seeds, config


def _save_comparison(compare_dir, task, task_options, methods, seeds, config: ResolvedTrainConfig, command) -> None:
    settings = {"task": task, "task_options": task_options, "methods": methods, "seeds": seeds}
    write_json(compare_dir / COMPARE_FILE, {**settings, "train": config.to_dict(), "command": command})


@dataclass(frozen=True)
class Plan:
    """What every run of a comparison shares."""

    compare_dir: Path
    task: str
    task_options: dict[str, Any]
    config: ResolvedTrainConfig
    threads: int | str
    jobs: int


def _run_comparison(plan: Plan, methods: list[str], seeds: int, progress: bool) -> list:
    """Every (seed, method) run, the finished ones read back; with ``jobs > 1`` several at once."""
    records: dict[tuple[int, int], Any] = {}
    todo = []
    for seed in range(seeds):
        for index, name in enumerate(methods):
            run_dir = plan.compare_dir / f"{name}-seed{seed}"
            status = read_status(run_dir)
            if status.status == "complete":
                records[(seed, index)] = load_run_record(run_dir)
                continue
            resume = status.status is not None
            note = f" (resuming: was {status.status}{'; ' + status.detail if status.detail else ''})" if resume else ""
            todo.append(((seed, index), name, seed, resume, note))
    total = seeds * len(methods)
    if plan.jobs == 1:
        for key, name, seed, resume, note in todo:
            print(f"[{len(records) + 1}/{total}] {plan.task}: {name}, seed {seed}{note}", flush=True)
            records[key] = _train_one(plan, name, seed, resume, progress)
    else:
        _train_in_parallel(plan, todo, records, total)
    return [records[key] for key in sorted(records)]


def _train_one(plan: Plan, name: str, seed: int, resume: bool, progress: bool = False):
    """One run of a comparison (also the body of a parallel worker process)."""
    from .runs.fit import fit_run  # Lightning is imported only to train

    run_dir = plan.compare_dir / f"{name}-seed{seed}"
    # a resumed run keeps the thread count it started with under `auto` (runs/threads.py)
    started = load_spec(run_dir).threads_used if resume and (run_dir / CONFIG_FILE).exists() else None
    spec = RunSpec(plan.task, name, seed, plan.config, dict(plan.task_options), plan.threads,
                   started if plan.threads == "auto" else None)  # fmt: skip
    run_dir.mkdir(exist_ok=True)
    save_spec(run_dir, spec)
    built = _build_task(plan.task, plan.task_options, seed)
    return fit_run(built, spec, run_dir, progress=progress, resume=resume, jobs=plan.jobs)


def _train_in_parallel(plan: Plan, todo: list, records: dict, total: int) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    # spawn: a fresh interpreter per worker, never a fork of a process holding torch's threads
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for key, name, seed, resume, note in todo:
            futures[pool.submit(_train_one, plan, name, seed, resume)] = (key, name, seed)
            print(f"queued {plan.task}: {name}, seed {seed}{note}", flush=True)
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
                print(f"[{len(records)}/{total}] {plan.task}: {name}, seed {seed} done", flush=True)


def status(path: Path) -> None:
    """Show whether a run, or each run of a comparison, is running, complete, diverged, failed or interrupted.

    Args:
        path: a run directory (made by ``fit``) or a comparison directory (made by ``compare``).
    """
    path = Path(path)
    if (path / COMPARE_FILE).exists():
        saved = _load_comparison(path)
        runs = [path / f"{m}-seed{s}" for s in range(int(saved["seeds"])) for m in saved["methods"]]
        report = path / "report.md"
        written = "written" if report.exists() else "not yet written"
        print(f"comparison {path}: {saved['task']}, {len(runs)} runs; report.md {written}")
    elif (path / "config.json").exists() or (path / "status.json").exists():
        runs = [path]
    else:
        raise FileNotFoundError(f"{path} is neither a run directory nor a comparison directory")
    for run in runs:
        found = read_status(run)
        line = f"  {run.name:32s} {found.status or 'not started'}"
        print(line + (f"  ({found.detail})" if found.detail and found.status is not None else ""))


def list_all() -> None:
    """List the tasks, the methods and the losses."""
    from ..losses import available_losses
    from .tasks import available_tasks

    for title, items in (
        ("tasks", available_tasks()),
        ("methods", {name: m.summary for name, m in METHODS.items()}),
        ("losses", available_losses()),
    ):
        print(f"{title}:")
        for name, summary in items.items():
            print(f"  {name:28s} {summary}")


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (a scheduler's stop, ``kill``) ends a run like Ctrl-C: its status says ``interrupted``."""

    def handle(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    commands = {"fit": fit, "compare": compare, "status": status, "list": list_all}
    with _sigterm_interrupts():
        if debug:
            CLI(commands, args=argv)
            return
        try:
            CLI(commands, args=argv)
        except KeyboardInterrupt:
            print("complement: interrupted; resume with --resume <the run or comparison directory>", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as error:  # a user's mistake, or a failure the message explains; --debug shows where
            print(f"complement: error: {error}", file=sys.stderr)
            print("(run again with --debug for the traceback)", file=sys.stderr)
            raise SystemExit(1) from None


if __name__ == "__main__":
    main()
