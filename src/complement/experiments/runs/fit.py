"""One training run of a task with a method, in its own directory, surviving kills.

A run directory holds ``config.json`` (everything needed to rebuild the run: task and
options, method, seed, train settings), ``status.json`` (:mod:`.status`), Lightning's
``logs/metrics.csv`` (CSV logger; TensorBoard too when installed; the learning rate of each
optimizer every epoch, ``lr-<Optimizer>``; steps between the last checkpoint and a kill
appear twice), ``checkpoints/``, ``history.json``, ``predictions.pt`` and ``record.json``.
Every file is written atomically. With robust settings (:mod:`.robust`), the model at the
end of training is attacked on the test set before the record is written and the run is
marked complete; the record's ``wall_time_s`` leaves that evaluation out (its own time is in
``record.robust``).

Checkpoints: one at every epoch end, plus one every ``checkpoint_every_n_steps``
optimizer steps when asked; only the latest of each kind is kept (and the best by
``keep_best`` when asked), each with its SHA-256 beside it. Resume continues from the
newest one that verifies (:mod:`.checkpoints`). They carry the model, the optimizer(s), the loop position,
the training loader's position and shuffle state, every RNG, the epoch's running
statistics and the history, so :func:`fit_run` with ``resume=True`` continues from the
newest one to the same result as an uninterrupted run (bit for bit on CPU).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from ..._atomic import atomic_path, remove_stale_temporaries, write_json
from ...training.checkpointing import AtomicCheckpointIO
from ...training.data import resumable_loader
from ...training.divergence import DivergenceGuard
from ...training.stepper import DivergenceError
from ..report.records import RunRecord
from . import robust
from .adversarial import adversarial_training, training_passes_per_batch
from .callbacks import EpochLines, Heartbeat, History, SayResumed
from .checkpoints import CHECKPOINTS, PruneWhenSuperseded, ResumePoint, checkpoint_callbacks, resume_point
from .files import RunSpec, save_spec
from .lock import directory_lock
from .methods import Method, get_method
from .module import TaskModule, predict
from .status import write_final_status, write_status
from .threads import resolve_threads


def _keep_earlier_metrics(run_dir: Path) -> None:
    """Lightning's CSV logger deletes an existing ``metrics.csv``: on resume, the earlier attempts'
    rows move to ``metrics.1.csv``, ``metrics.2.csv``, ... first (the newest attempt's stay in ``metrics.csv``)."""
    current = run_dir / "logs" / "metrics.csv"
    if current.exists():
        attempt = 1
        while (run_dir / "logs" / f"metrics.{attempt}.csv").exists():
            attempt += 1
        current.replace(run_dir / "logs" / f"metrics.{attempt}.csv")


def _loggers(run_dir: Path) -> list:
    warnings.filterwarnings("ignore", message=".*Experiment logs directory .* exists and is not empty.*")
    loggers: list = [CSVLogger(run_dir, name="logs", version="")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))
    except ImportError:
        pass
    return loggers


def fit_run(
    task, spec: RunSpec, run_dir: Path, progress: bool = True, resume: bool = False, jobs: int = 1
) -> RunRecord:
    """Train, test and predict one run in ``run_dir`` (whose ``config.json`` holds ``spec``);
    with ``resume``, continue from its newest checkpoint. ``jobs`` is how many runs share the
    machine (for the ``auto`` thread count). Returns the run's record."""
    run_dir = Path(run_dir)
    method = get_method(spec.method)
    config = spec.train
    with directory_lock(run_dir):
        write_status(run_dir, "running")
        start = time.perf_counter()
        try:
            record = _train_and_predict(task, spec, method, run_dir, progress, resume, jobs)
            record.wall_time_s = time.perf_counter() - start - record.robust.get("wall_time_s", 0.0)
            write_json(run_dir / "record.json", record.to_dict())
        except DivergenceError as error:
            write_final_status(run_dir, "diverged", error=str(error))
            raise
        except (KeyboardInterrupt, SystemExit) as error:
            write_final_status(run_dir, "interrupted", error=type(error).__name__)
            raise
        except BaseException as error:
            write_final_status(run_dir, "failed", error=f"{type(error).__name__}: {error}")
            raise
        write_status(run_dir, "complete", epochs=config.max_epochs * method.epoch_factor)
    return record


def _train_and_predict(
    task, spec: RunSpec, method: Method, run_dir: Path, progress: bool, resume: bool, jobs: int
) -> RunRecord:
    config = spec.train
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    train = resumable_loader(task.train, config.batch_size, seed=spec.seed, collate_fn=task.collate_fn)
    steps_per_epoch = math.ceil(len(train) / config.accumulate_grad_batches)  # COT steps: one per group
    adversarial = adversarial_training(spec.method, config, task)
    module = TaskModule(task.build_model(), task.num_classes, task.ignore_index, method, config, steps_per_epoch,
                        adversarial)  # fmt: skip
    if resume and spec.threads == "auto" and spec.threads_used is not None:
        threads = spec.threads_used  # the count it started with: another would change the last bits
    else:
        threads = resolve_threads(spec.threads, module, jobs)
    torch.set_num_threads(threads)
    save_spec(run_dir, dataclasses.replace(spec, threads_used=threads))
    evaluation = {"batch_size": max(config.batch_size, 256), "collate_fn": task.collate_fn}
    val, test = DataLoader(task.val, **evaluation), DataLoader(task.test, **evaluation)
    history = History(passes_per_batch=training_passes_per_batch(len(module.objective.phases), adversarial))
    if resume:
        remove_stale_temporaries(run_dir)  # a kill during a write leaves its temporary file behind
        _keep_earlier_metrics(run_dir)
    resume_from = resume_point(run_dir) if resume else ResumePoint(None, ())
    callbacks = [history, DivergenceGuard(), Heartbeat(run_dir), PruneWhenSuperseded(run_dir, resume_from.superseded),
                 LearningRateMonitor("epoch"), *checkpoint_callbacks(run_dir / CHECKPOINTS, config)]  # fmt: skip
    if resume_from.checkpoint is not None:
        callbacks.append(SayResumed(resume_from.checkpoint))
    bars = progress and sys.stdout.isatty()
    if progress and not bars:
        callbacks.append(EpochLines())
    trainer = pl.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        precision=config.precision,  # type: ignore[arg-type]
        max_epochs=config.max_epochs * method.epoch_factor,
        logger=_loggers(run_dir),
        default_root_dir=run_dir,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=bars,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    with warnings.catch_warnings():
        # Lightning's advice for manual optimization (save a pre-step copy of the model) does not
        # apply: COT's checkpoints are taken after a complete step, which is what resume needs.
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        trainer.fit(module, train, val, ckpt_path=resume_from.checkpoint, weights_only=True)
    tested = trainer.test(module, test, verbose=False)[0]
    with atomic_path(run_dir / "predictions.pt") as temporary:
        torch.save(predict(module, test, task.ignore_index), temporary)
    write_json(run_dir / "history.json", history.rows)
    record = RunRecord(
        method=spec.method,
        seed=spec.seed,
        history=history.rows,
        test={k: float(v) for k, v in tested.items() if k.startswith("test_")},
        predictions_path=str(run_dir / "predictions.pt"),
        run_dir=str(run_dir),
        task=spec.task,
        num_classes=task.num_classes,
        # a COT update steps the optimizer(s) once per phase; Lightning counts it once
        facts=run_facts(task, spec, trainer, optimizer_steps=trainer.global_step * len(module.objective.phases)),
    )
    if spec.robust is not None:  # the model at the end of training, as tested
        evaluation = robust.evaluate(module.model, task, spec.robust, spec.seed, robust.evaluation_device(config))
        print(f"{spec.method}, seed {spec.seed}: {robust.summary(evaluation)}", flush=True)
        record = robust.apply(record, evaluation)
    return record


def run_facts(task, spec: RunSpec, trainer: pl.Trainer, optimizer_steps: int | None = None) -> dict[str, Any]:
    """What the report states about a run: data sizes and classes, resolved settings, optimizer steps taken,
    versions, machine."""
    import complement

    facts: dict[str, Any] = {
        "optimizer_steps": optimizer_steps,
        "sizes": {name: len(getattr(task, name)) for name in ("train", "val", "test")},
        "class_names": [str(name) for name in task.class_names],
        "train": spec.train.to_dict(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lightning": pl.__version__,
            "complement": complement.__version__,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "accelerator": type(trainer.accelerator).__name__,
            "device": str(trainer.strategy.root_device),
        },
    }
    counts = getattr(task, "info", {}).get("train_class_counts")
    if counts is not None:
        facts["train_class_counts"] = [int(count) for count in counts]
    return facts


logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
