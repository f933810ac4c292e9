"""Starting and resuming one run: the checks made before a directory is created, and the
rules for what ``--resume`` may change (the CLI's ``fit`` parses, this module decides)."""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..report.records import RunRecord
from ..tasks.base import Task
from . import robust as robustness
from .adversarial import adversarial_training
from .config import RESUME_CHANGES, RobustConfig, TrainConfig, refuse_robust_changes, resumed
from .files import RunSpec, check_output_directory, load_spec, new_run_dir, save_spec
from .lock import directory_lock
from .methods import get_method
from .status import read_status
from .threads import check_threads

DEFAULT_TASK, DEFAULT_METHOD = "mnist", "cot"


def build_task(task: str, task_options: dict[str, Any], seed: int) -> Task:
    from ..tasks import build_task as build  # the task registry loads its modules on use

    return build(task, seed=seed, **task_options)


def check_task_options(task_options: dict[str, Any]) -> None:
    """The run's seed is its own option: a ``seed`` among the task's options would be a second one."""
    if "seed" in task_options:
        raise ValueError(
            f"task_options has a seed ({task_options['seed']!r}); a run's seed is set with --seed (compare: --seeds), "
            "which seeds the data split as well as the training"
        )


def run_dir_name(method: str, seed: int) -> str:
    """The folder of one (method, seed) run inside a comparison."""
    return f"{method}-seed{seed}"


def read_settings(path: Path, what: str) -> dict[str, Any]:
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


def check_seed(name: str, seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be an integer in [0, 2**32) (numpy's seed range); got {seed!r}")


def refuse_if_running(run_dir: Path) -> None:
    status = read_status(run_dir)
    if status.alive:
        raise RuntimeError(f"{run_dir} is still running ({status.detail}); stop it before resuming")


def refuse_changes(given: dict[str, Any], saved: dict[str, Any], what: str, allowed: str) -> None:
    """``--resume`` keeps what was saved: any given value that differs is an error naming it."""
    changed = {key: value for key, value in given.items() if value is not None and value != saved.get(key)}
    if changed:
        listed = ", ".join(f"--{key} {value!r} (saved: {saved.get(key)!r})" for key, value in changed.items())
        raise ValueError(f"--resume continues {what} as saved; {listed} would change it. {allowed}")


def start_run(
    task: str | None,
    method: str | None,
    seed: int | None,
    train: TrainConfig,
    task_options: dict[str, Any] | None,
    out: Path,
    threads: int | str,
    hold: contextlib.ExitStack | None = None,
    robust: RobustConfig | None = None,
) -> tuple[Task, RunSpec, Path]:
    """A new run's task, settings and directory; everything is checked before the directory is made
    (the robust settings against the task too). With ``hold``, the directory's lock is taken as soon
    as it exists, and kept by ``hold``."""
    check_threads(threads)
    task, method = task or DEFAULT_TASK, method or DEFAULT_METHOD
    seed = 0 if seed is None else seed
    check_seed("seed", seed)
    get_method(method)
    check_output_directory(Path(out))
    options = dict(task_options or {})
    check_task_options(options)
    built = build_task(task, options, seed)  # validates the task, its options and its data first
    config = train.resolved(built.defaults)
    config.check_milestones_apply()
    adversarial_training(method, config, built)
    spec = RunSpec(task, method, seed, config, options, threads, robust=robustness.resolve(robust, built))
    run_dir = new_run_dir(Path(out), f"{task}-{method}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    if hold is not None:
        hold.enter_context(directory_lock(run_dir))
    save_spec(run_dir, spec)
    return built, spec, run_dir


def resume_run(
    run_dir: Path,
    task: str | None,
    method: str | None,
    seed: int | None,
    train: TrainConfig,
    task_options: dict[str, Any] | None,
    threads: int | str,
    robust: RobustConfig | None = None,
) -> tuple[Task, RunSpec]:
    """An earlier run's task and settings, with only the changes ``--resume`` allows (RESUME_CHANGES;
    the robust settings never change: ``complement robust`` evaluates with others).
    Call it holding the run's lock (:func:`.lock.directory_lock`)."""
    check_threads(threads)
    spec = load_spec(run_dir)
    refuse_changes(
        {"task": task, "method": method, "seed": seed, "task_options": task_options},
        {"task": spec.task, "method": spec.method, "seed": spec.seed, "task_options": spec.task_options},
        "a run",
        "Start a new run to change them.",
    )
    refuse_robust_changes(robust or RobustConfig(), spec.robust, "a run", run_dir)
    refuse_if_running(run_dir)
    spec = RunSpec(spec.task, spec.method, spec.seed, resumed(spec.train, train, tuple(RESUME_CHANGES), "a run"),
                   spec.task_options, threads, spec.threads_used if threads == "auto" else None,
                   spec.robust)  # fmt: skip
    built = build_task(spec.task, spec.task_options, spec.seed)
    save_spec(run_dir, spec)
    return built, spec


def train_run(
    task: str | None = None,
    method: str | None = None,
    seed: int | None = None,
    train: TrainConfig | None = None,
    task_options: dict[str, Any] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    *,
    threads: int | str = "auto",
    progress: bool = False,
    robust: RobustConfig | None = None,
) -> tuple[RunRecord, Path]:
    """Start (or resume) one run and train it to the end (and, with ``robust`` settings, evaluate its
    robustness); ``complement fit``. Returns its record and directory.

    An interruption (Ctrl-C, SIGTERM) leaves the run resumable; the exception carries
    ``resume_command``, the command that continues it."""
    train = train or TrainConfig()
    with contextlib.ExitStack() as hold:
        if resume is not None:
            run_dir = Path(resume)
            load_spec(run_dir)  # a run directory (clear error otherwise) before its lock file is made there
            hold.enter_context(directory_lock(run_dir))
            hold.enter_context(resume_hint(f"complement fit --resume {shlex.quote(str(run_dir))}"))
            built, spec = resume_run(run_dir, task, method, seed, train, task_options, threads, robust)
        else:
            built, spec, run_dir = start_run(task, method, seed, train, task_options, out, threads, hold, robust)
            hold.enter_context(resume_hint(f"complement fit --resume {shlex.quote(str(run_dir))}"))
        from .fit import fit_run  # Lightning is imported only to train

        return fit_run(built, spec, run_dir, progress=progress, resume=resume is not None), run_dir


@contextlib.contextmanager
def resume_hint(command: str) -> Iterator[None]:
    """Attach ``command`` as ``resume_command`` to an interruption leaving the block (an outer
    block's hint wins: a comparison's run is resumed by resuming the comparison)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as error:
        error.resume_command = command  # type: ignore[union-attr]
        raise
