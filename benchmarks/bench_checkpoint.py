"""What checkpointing costs the README's main job: COT epochs with and without checkpoints.

Run:  python -m benchmarks.bench_checkpoint [--reps 3] [--epochs 4] [--no-write]

Trains ``cot`` on the README's default task (5,000 MNIST digits, MLP of width 256,
``configs/mnist.yaml``) through :func:`complement.experiments.runs.fit_run`, as ``complement compare``
does, in three arms run round-robin:

- ``none``: no checkpoint at all (the checkpoint callbacks removed);
- ``epoch`` (the default): one checkpoint at every epoch end;
- ``steps``: also one every 20 optimizer steps (about 3 per epoch).

An epoch's time is the interval between consecutive epoch starts, so it includes the
epoch's validation and its checkpoint (written atomically: temporary file, fsync,
rename). Reports the median epoch time of each arm and its ratio to ``none``; writes
the ``checkpoint`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl

from benchmarks._common import machine, steady_allocator, write_section
from complement.experiments.runs import RunSpec, TrainConfig, fit, save_spec
from complement.experiments.tasks import build_task


class EpochClock(pl.Callback):
    def __init__(self):
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module):
        self.starts.append(time.perf_counter())  # closes the last epoch, checkpoint included


def epoch_times(task, arm: str, epochs: int) -> list[float]:
    clock = EpochClock()
    steps = 20 if arm == "steps" else None
    train = TrainConfig(max_epochs=epochs, checkpoint_every_n_steps=steps).resolved(task.defaults)
    spec = RunSpec("mnist", "cot", 0, train, {"model": "mlp", "width": 256})
    original = fit.checkpoint_callbacks

    def callbacks(directory, config):
        return [clock, *([] if arm == "none" else original(directory, config))]

    fit.checkpoint_callbacks = callbacks
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            save_spec(Path(run_dir), spec)
            fit.fit_run(task, spec, Path(run_dir), progress=False)
    finally:
        fit.checkpoint_callbacks = original
    return [b - a for a, b in zip(clock.starts, clock.starts[1:])][1:]  # the first epoch warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    steady_allocator()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    task = build_task("mnist", seed=0, model="mlp", width=256)
    arms = ("none", "epoch", "steps")
    samples: dict[str, list[float]] = {arm: [] for arm in arms}
    for rep in range(args.reps):
        for arm in arms:
            samples[arm] += epoch_times(task, arm, args.epochs)
        medians = ", ".join(f"{arm} {statistics.median(values):.3f} s" for arm, values in samples.items())
        print(f"rep {rep + 1}/{args.reps}: {medians}", flush=True)
    base = statistics.median(samples["none"])
    lines = [
        "## Checkpointing: COT epochs with and without checkpoints",
        "",
        f"Command: `python -m benchmarks.bench_checkpoint --reps {args.reps} --epochs {args.epochs}`. "
        f"Machine: {machine()}. Task: the README's main job (5,000 MNIST digits, MLP width 256, batch "
        f"{task.defaults['batch_size']}), method `cot`, through `fit_run` as `complement compare` runs it. An "
        "epoch's time runs from one epoch start to the next, validation and checkpoint included; medians over "
        f"{len(samples['none'])} epochs per arm (the first epoch of each run left out), arms run round-robin.",
        "",
        "| checkpoints | median epoch (s) | / no checkpoints |",
        "|---|---|---|",
    ]
    names = {"none": "none", "epoch": "every epoch end (the default)", "steps": "every epoch end + every 20 steps"}
    for arm in arms:
        median = statistics.median(samples[arm])
        lines.append(f"| {names[arm]} | {median:.3f} | {median / base:.3f}× |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("checkpoint", body)
        print("wrote docs/benchmarks.md (section 'checkpoint')")


if __name__ == "__main__":
    main()
