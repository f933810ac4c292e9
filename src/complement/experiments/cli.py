"""The ``complement`` command line (jsonargparse: typed options, ``--config`` YAML files).

    complement compare --config configs/mnist.yaml          # baseline vs COT vs equal compute, over seeds
    complement compare --task digits --methods '[ce, cot]' --seeds 3 --train.max_epochs 5
    complement compare --resume runs/compare-mnist-20261123-101500   # finish an interrupted comparison
    complement fit --task mnist --method cot --seed 0        # one run
    complement fit --resume runs/mnist-cot-seed0-...  --train.max_epochs 20   # continue, and train longer
    complement status runs/compare-mnist-20261123-101500     # which runs are running, done, dead
    complement compare --task mnist --methods '[ce, cot]' --robust.attacks '[fgsm, pgd]' --robust.eps '[0.1, 0.3]'
    complement robust runs/compare-mnist-20261123-101500 --robust.attacks '[fgsm, pgd, pgd_dlr]'  # no retraining
    complement list                                          # tasks, methods, losses

Every option can come from a YAML file given with ``--config``; a key that does not exist
is an error. Runs go to new directories under ``--out`` (default ``runs``); everything
is checked before a directory is made. A user error prints one line and exits with
status 1; ``--debug`` shows the traceback instead. Ctrl-C or SIGTERM stops a run cleanly
(its status says ``interrupted``), prints the command that resumes it and exits with 130
or 143. One process at a time may work in a run or comparison directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import TypeAlias

from jsonargparse import ArgumentError

from .configs import resolve_config_args
from .parsing import join_list_values, one_line, run_cli
from .runs.comparison import COMPARE_FILE, Comparison
from .runs.config import RobustConfig, TrainConfig
from .runs.methods import METHODS
from .runs.status import read_status
from .runs.tuning import TuneConfig

# Task options are plain YAML/JSON values. Typed ``Any``, jsonargparse instantiates a
# ``{class_path: ..., init_args: ...}`` found in them (any importable class: ``subprocess.Popen``
# runs a command) while parsing a --config file or the command line. Under these types such
# a mapping stays data, at any depth, and the task rejects it; scalars are still typed (YAML's
# ``0.2`` and ``--task_options.label_noise 0.2`` give a float). Not a recursive alias
# (``list["JSONValue"]``): jsonargparse 4.53 leaves the inner reference unresolved and
# validates nothing below it, as for ``Any``, so a spec in a list in a mapping was built again.
JSONValue: TypeAlias = bool | int | float | str | list | dict | None


def _quiet() -> None:
    """Keep the console to progress bars, the table and the report path."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")


def fit(
    task: str | None = None,
    method: str | None = None,
    seed: int | None = None,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (jsonargparse reads the default)
    task_options: dict[str, JSONValue] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
    threads: int | str = "auto",
    robust: RobustConfig = RobustConfig(),  # noqa: B008 (jsonargparse reads the default)
) -> None:
    """Train one run of a task with a method; print its test metrics and directory.

    Args:
        task: a task name (``complement list`` shows them; ``complement list --task NAME`` its options).
        method: how to train (``complement list`` says what each is).
        seed: seed of the data split, initialization and shuffling.
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
        robust: adversarial robustness of the final model on the test set, image tasks only (any
            ``--robust.*`` option turns it on; docs/robustness.md). Recorded in config.json; a resumed run
            keeps it (``complement robust DIR`` evaluates with other settings).
    """
    _quiet()
    from .runs.launch import train_run

    record, run_dir = train_run(
        task, method, seed, train, task_options, out, resume, threads=threads, progress=progress, robust=robust
    )
    print(json.dumps(record.test, indent=2))
    print(f"run directory: {run_dir}")


def compare(
    task: str | None = None,
    methods: list[str] | None = None,
    seeds: int | None = None,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (jsonargparse reads the default)
    task_options: dict[str, JSONValue] | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
    threads: int | str = "auto",
    jobs: int = 1,
    robust: RobustConfig = RobustConfig(),  # noqa: B008 (jsonargparse reads the default)
    tune: TuneConfig = TuneConfig(),  # noqa: B008 (jsonargparse reads the default)
) -> None:
    """Train each method over several seeds on one task; write report.md with tables and figures.

    Args:
        task: a task name (``complement list`` shows them; ``complement list --task NAME`` its options).
        methods: methods to compare; ``ce_2x`` is cross-entropy with COT's number of passes.
        seeds: number of seeds (0, 1, ...) per method.
        train: hyper-parameters shared by all methods; unset ones take the task's defaults.
        task_options: task keyword arguments, e.g. ``{label_noise: 0.2}``.
        out: parent directory of the comparison directory.
        resume: an interrupted comparison directory to finish with its saved settings. It may
            grow: more ``--seeds``, more ``--methods``, and ``--train.checkpoint_every_n_steps``.
        progress: show Lightning's progress bars.
        threads: CPU threads per run (``auto`` or a count; see ``fit``).
        jobs: runs trained at once, each in its own process (the cores are shared among them under
            ``threads: auto``); the results are those of ``jobs: 1`` with the same thread count.
        robust: adversarial robustness of every run's final model on the test set, image tasks only (any
            ``--robust.*`` option turns it on; docs/robustness.md); the report compares the robust
            accuracy per ε. Recorded in compare.json; a resumed comparison keeps it (``complement robust
            DIR`` adds or changes it without retraining).
        tune: choose each method's learning rate on the validation split first (``--tune.lr
            '[1e-3, 3e-3, 1e-2]'``): every method trains at each rate, keeps the best by ``--tune.metric``
            (``val_acc``), and its paired runs train at that rate; the report shows the grid, the choice
            and the budget. Recorded in compare.json; a resumed comparison keeps it.
    """
    _quiet()
    from .runs.comparison import compare as run

    command = "complement " + " ".join(shlex.quote(arg) for arg in _command_line)
    paths = run(task, methods, seeds, train, task_options, out, resume,
                threads=threads, jobs=jobs, progress=progress, command=command, robust=robust, tune=tune)  # fmt: skip
    print()
    print(paths.console_table)
    print(f"\nreport: {paths.report}")


def robust(
    path: Path,
    robust: RobustConfig = RobustConfig(),  # noqa: B008 (jsonargparse reads the default)
    threads: int | str = "auto",
) -> None:
    """Evaluate the adversarial robustness of finished runs without training them again.

    Each finished run's final model (its newest epoch checkpoint, verified) is attacked on its test
    set; the results go into its record.json and, for a comparison, into a rewritten report.md. The
    settings are saved: a comparison resumed afterwards evaluates its remaining runs the same way.
    Runs already evaluated with the same settings are skipped, so an interrupted evaluation resumes.

    Args:
        path: a run directory (made by ``fit``) or a comparison directory (made by ``compare``).
        robust: the attacks, radii, steps and examples; unset ones take the settings saved with the
            runs, else the defaults (docs/robustness.md).
        threads: CPU threads for torch: ``auto`` (see ``fit``) or a count.
    """
    _quiet()
    from .runs.robust import robust_directory

    outcome = robust_directory(Path(path), robust, threads=threads)
    done = f"{len(outcome.evaluated)} run(s) evaluated, {len(outcome.already)} already evaluated with these settings"
    print(f"\n{outcome.settings.describe()}: {done}")
    if outcome.console_table:
        print(f"\n{outcome.console_table}")
    if outcome.report is not None:
        print(f"\nreport: {outcome.report}")
    elif outcome.unfinished:
        print(
            f"{len(outcome.unfinished)} run(s) unfinished; complement compare --resume {shlex.quote(str(path))} trains "
            "them, evaluates them with these settings and writes the report"
        )
    else:
        print(json.dumps(outcome.records[0].test, indent=2))
        print(f"run directory: {outcome.directory}")


def status(path: Path) -> None:
    """Show whether a run, or each run of a comparison, is running, complete, diverged, failed or interrupted.

    Args:
        path: a run directory (made by ``fit``) or a comparison directory (made by ``compare``).
    """
    path = Path(path)
    if (path / COMPARE_FILE).exists():
        comparison = Comparison.load(path)
        runs = comparison.run_dirs()
        written = "written" if (path / "report.md").exists() else "not yet written"
        print(f"comparison {path}: {comparison.task}, {len(runs)} runs; report.md {written}")
    elif (path / "config.json").exists() or (path / "status.json").exists():
        runs = [path]
    else:
        raise FileNotFoundError(f"{path} is neither a run directory nor a comparison directory")
    for run in runs:
        found = read_status(run)
        line = f"  {run.name:32s} {found.status or 'not started'}"
        print(line + (f"  ({found.detail})" if found.detail and found.status is not None else ""))


def list_all(task: str | None = None) -> None:
    """List the tasks, the methods and the losses; with ``--task``, one task's options.

    Args:
        task: a task name: show its data, its options with their defaults and meanings, and how to set them.
    """
    from ..losses import available_losses
    from .tasks import available_tasks

    if task is not None:
        from .tasks.options import describe_task

        print(describe_task(task), end="")
        return

    for title, items in (
        ("tasks", available_tasks()),
        ("methods", {name: m.summary for name, m in METHODS.items()}),
        ("losses", available_losses()),
    ):
        print(f"{title}:")
        for name, summary in items.items():
            print(f"  {name:28s} {summary}")
    print("\ncomplement list --task NAME shows a task's options, their defaults and meanings")


_command_line: list[str] = []  # main()'s arguments: what a comparison records as its command
_STOP_SIGNALS: dict[int, str] = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
_received: list[int] = []  # the stop signals received by this process, in order


@contextlib.contextmanager
def _signals_interrupt():
    """SIGINT and SIGTERM (Ctrl-C, a scheduler's stop, ``kill``) end a run the same way, as a
    ``KeyboardInterrupt`` whose run status says ``interrupted``; which one came is remembered
    for the exit code. A signal the parent set to be ignored (``nohup``) stays ignored."""

    def handle(signum, frame):
        _received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {}
    try:
        for signum in _STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, handle)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupted(error: BaseException) -> SystemExit:
    """The exit after Ctrl-C or SIGTERM: a line saying how to resume, and status 128 + the signal
    (130, 143) as shells report a process stopped by it. (Lightning turns the interrupt into
    ``SystemExit(1)``; the signal received says what it was.)"""
    signum = _received[-1] if _received else signal.SIGINT
    resume = getattr(error, "resume_command", None)
    then = f"resume with: {resume}" if resume else "no run had started, so there is nothing to resume"
    print(f"complement: interrupted by {_STOP_SIGNALS[signum]}; {then}", file=sys.stderr, flush=True)
    return SystemExit(128 + signum)


def main(args: list[str] | None = None) -> None:
    """Run ``complement`` on ``args`` (default ``sys.argv[1:]``): a user error prints one line and exits
    with 1 (2 for a parse error), an interrupt prints the resume command and exits with 130 or 143."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    commands = {"fit": fit, "compare": compare, "robust": robust, "status": status, "list": list_all}
    _command_line[:] = argv  # recorded as typed: --config mnist, not the shipped file's path
    _received.clear()
    argv = join_list_values(resolve_config_args(argv))
    with _signals_interrupt():
        if debug:
            run_cli(commands, argv)
            return
        try:
            run_cli(commands, argv)
        except ArgumentError as error:
            command = argv[0] if argv and argv[0] in commands else ""
            print(f"complement: error: {one_line(error)}", file=sys.stderr)
            print(f"(complement {command + ' ' if command else ''}--help lists the options)", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt as error:
            raise _interrupted(error) from None
        except SystemExit as error:
            if not _received:  # a plain exit (jsonargparse's --help, a usage error): its own code
                raise
            raise _interrupted(error) from None
        except Exception as error:  # a user's mistake, or a failure the message explains; --debug shows where
            print(f"complement: error: {error}", file=sys.stderr)
            print("(run again with --debug for the traceback)", file=sys.stderr)
            raise SystemExit(1) from None


if __name__ == "__main__":
    main()
