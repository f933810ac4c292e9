"""Where one CPU thread beats all cores, and whether seeds run faster side by side.

Run:  python -m benchmarks.bench_threads [--reps 2] [--tasks digits,mnist,...] [--no-write]

Part 1, threads. For each built-in task (trainable parameters from 0.01M to 22M), runs
``complement fit --method ce`` in a subprocess with ``--threads 1`` and with
``--threads <all cores>``, the two arms alternating, and reports the median training +
prediction time (``wall_time_s`` of the run's record) and the process's whole wall time.
The ratio all-cores / one-thread tells on which side of the crossover a model lies;
:mod:`complement.experiments.runs.threads` sets its ``auto`` policy from it.

Part 1 runs twice: on the quiet machine, and with one core kept busy by a spinning process
(what a second job, a test suite or a browser does to a shared machine). OpenMP's threads
wait for each other at every op, so one descheduled thread stalls them all.

Part 2, jobs. ``complement compare`` over 4 seeds of ``ce`` and ``cot`` on small tasks,
as (jobs 1, threads all), (jobs 1, threads 1) and (jobs <cores>, threads 1); whole wall
time of the command, medians over ``reps``.

Writes the ``threads`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import machine, write_section
from complement.experiments.runs.threads import AUTO_ONE_THREAD_BELOW, available_cores

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "complement"]

# (label, task, task options, epochs): one CE run each; options keep a run under ~2 minutes.
FIT_CASES: dict[str, tuple[str, dict, int]] = {
    "digits": ("digits", {}, 5),
    "mnist_mlp": ("mnist", {"model": "mlp", "width": 256}, 3),
    "mnist_cnn": ("mnist", {}, 2),
    "fashion_mnist": ("fashion_mnist", {}, 1),
    "movie_reviews_frozen": ("movie_reviews_frozen", {}, 3),
    "tweets_lm": ("tweets_lm", {}, 1),
    "mnist_mlp_2048": ("mnist", {"model": "mlp", "width": 2048}, 2),
    "tweets": ("tweets", {"train_size": 400}, 1),
}
JOB_CASES: dict[str, tuple[str, dict, int]] = {
    "digits": ("digits", {}, 5),
    "mnist_mlp": ("mnist", {"model": "mlp", "width": 256}, 2),
}


def trainable_parameters(task_name: str, options: dict) -> int:
    code = (
        "import json, sys; from complement.experiments.tasks import build_task; "
        "t = build_task(sys.argv[1], seed=0, **json.loads(sys.argv[2])); m = t.build_model(); "
        "print(sum(p.numel() for p in m.parameters() if p.requires_grad))"
    )
    out = subprocess.run([sys.executable, "-c", code, task_name, json.dumps(options)], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def busy_core(busy: bool):
    """A process that spins one core for the duration (nothing when ``busy`` is false)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*CLI, *args, "--progress", "false"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def fit_once(task_name: str, options: dict, epochs: int, threads: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        args = ["fit", "--task", task_name, "--method", "ce", "--train.max_epochs", str(epochs)]
        args += ["--task_options", json.dumps(options), "--threads", str(threads), "--out", out]
        whole = run(args)
        (record,) = Path(out).rglob("record.json")
        config = json.loads((record.parent / "config.json").read_text())
        assert config["threads_used"] == threads, config
        return json.loads(record.read_text())["wall_time_s"], whole


def compare_once(task_name: str, options: dict, epochs: int, jobs: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        args = ["compare", "--task", task_name, "--methods", "[ce, cot]", "--seeds", "4"]
        args += ["--train.max_epochs", str(epochs), "--task_options", json.dumps(options)]
        args += ["--threads", str(threads), "--jobs", str(jobs), "--out", out]
        return run(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--tasks", default=",".join(FIT_CASES), help="comma-separated labels of part 1")
    parser.add_argument("--jobs-tasks", default=",".join(JOB_CASES), help="comma-separated labels of part 2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cores = available_cores()
    if cores < 2:
        raise SystemExit("this benchmark compares 1 thread with all cores; this machine has one core")

    fit_rows = []
    for label in filter(None, args.tasks.split(",")):
        task_name, options, epochs = FIT_CASES[label]
        params = trainable_parameters(task_name, options)
        row: list = [task_name, options, epochs, params]
        for busy in (False, True):
            times: dict[int, list[tuple[float, float]]] = {1: [], cores: []}
            with busy_core(busy):
                for _ in range(args.reps):
                    for threads, arm_times in times.items():
                        arm_times.append(fit_once(task_name, options, epochs, threads))
            one, many = (statistics.median(t for t, _ in times[n]) for n in (1, cores))
            one_whole, many_whole = (statistics.median(w for _, w in times[n]) for n in (1, cores))
            row += [one, many, one_whole, many_whole]
            print(f"{label}{' (one core busy)' if busy else ''}: {params:,} params, fit {one:.1f} s (1 thread) vs "
                  f"{many:.1f} s ({cores}); ratio {many / one:.2f}", flush=True)  # fmt: skip
        fit_rows.append(tuple(row))

    job_rows = []
    arms = [(1, cores), (1, 1), (cores, 1)]
    for label in filter(None, args.jobs_tasks.split(",")):
        task_name, options, epochs = JOB_CASES[label]
        samples: dict[tuple[int, int], list[float]] = {arm: [] for arm in arms}
        for _ in range(args.reps):
            for jobs, threads in arms:
                samples[(jobs, threads)].append(compare_once(task_name, options, epochs, jobs, threads))
        medians = {arm: statistics.median(values) for arm, values in samples.items()}
        job_rows.append((task_name, options, epochs, medians))
        print(f"{label}: " + ", ".join(f"jobs {j} threads {t}: {s:.1f} s" for (j, t), s in medians.items()), flush=True)

    lines = [
        "## Threads and parallel seeds on CPU",
        "",
        f"Command: `python -m benchmarks.bench_threads --reps {args.reps}`. Machine: {machine()}; "
        f"{cores} cores available. Medians over {args.reps} runs per arm, arms alternating.",
        "",
        "**Threads.** One `complement fit --method ce` run per arm. *fit* is the run's `wall_time_s` "
        "(training, testing, prediction); *process* adds interpreter start, imports and data loading. "
        "*Busy*: the same with one core kept busy by a spinning process. "
        "Ratio > 1: one thread is faster. The `auto` policy (src/complement/runs/threads.py) gives a run the "
        f"cores idle when it starts, and one thread to models under {AUTO_ONE_THREAD_BELOW:,} trainable "
        "parameters.",
        "",
        f"| task (options, epochs) | trainable params | quiet: fit, 1 / {cores} threads (s) "
        f"| quiet: {cores} threads / 1 | quiet: process, 1 / {cores} threads (s) "
        f"| busy: fit, 1 / {cores} threads (s) | busy: {cores} threads / 1 | auto picks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fit_rows.sort(key=lambda row: row[3])
    for task_name, options, epochs, params, one, many, one_whole, many_whole, b_one, b_many, *_ in fit_rows:
        shown = f"`{task_name}` {json.dumps(options) if options else ''} {epochs} ep".replace("  ", " ")
        auto = "1" if params < AUTO_ONE_THREAD_BELOW else f"{cores} quiet, 1 busy"
        lines.append(f"| {shown} | {params:,} | {one:.1f} / {many:.1f} | {many / one:.2f} "
                     f"| {one_whole:.1f} / {many_whole:.1f} | {b_one:.1f} / {b_many:.1f} | {b_many / b_one:.2f} "
                     f"| {auto} |")  # fmt: skip
    if job_rows:
        lines += [
            "",
            "**Parallel seeds.** `complement compare --methods [ce, cot] --seeds 4` (8 runs), whole command "
            "wall time. `--jobs N` runs N runs at once in spawned processes; the records equal `--jobs 1`'s at "
            "the same thread count (tests/experiments/test_runs.py).",
            "",
            f"| task (options, epochs) | jobs 1, {cores} threads (s) | jobs 1, 1 thread (s) "
            f"| jobs {cores}, 1 thread each (s) | best |",
            "|---|---|---|---|---|",
        ]
        for task_name, options, epochs, medians in job_rows:
            shown = f"`{task_name}` {json.dumps(options) if options else ''} {epochs} ep".replace("  ", " ")
            best = min(medians, key=lambda arm: medians[arm])
            lines.append(f"| {shown} | {medians[(1, cores)]:.1f} | {medians[(1, 1)]:.1f} | "
                         f"{medians[(cores, 1)]:.1f} | jobs {best[0]}, threads {best[1]} |")  # fmt: skip
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("threads", body)
        print("wrote docs/benchmarks.md (section 'threads')")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
