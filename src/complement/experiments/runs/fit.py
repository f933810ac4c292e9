"""One training run of a task with a method, in its own directory, surviving kills.

A run directory holds ``config.json`` (everything needed to rebuild the run: task and
options, method, seed, train settings), ``status.json`` (:mod:`.status`), Lightning's
``logs/metrics.csv`` (CSV logger; TensorBoard too when installed; steps between the
last checkpoint and a kill appear twice), ``checkpoints/``, ``history.json``,
``predictions.pt`` and ``record.json``. Every file is written atomically.

Checkpoints: one at every epoch end, plus one every ``checkpoint_every_n_steps``
optimizer steps when asked; only the latest of each kind is kept (and the best by
``keep_best`` when asked). They carry the model, the optimizer(s), the loop position,
the training loader's position and shuffle state, every RNG, the epoch's running
statistics and the history, so :func:`fit_run` with ``resume=True`` continues from the
newest one to the same result as an uninterrupted run (bit for bit on CPU).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..._atomic import atomic_path, remove_stale_temporaries, write_json
from ...metrics import flatten_kept
from ...training.checkpointing import AtomicCheckpointIO, CotCheckpoint
from ...training.data import resumable_loader
from ...training.divergence import DivergenceGuard
from ...training.lightning_module import CotModule
from ...training.stepper import DivergenceError
from ..report.records import RunRecord
from .config import BEST_MODES, ResolvedTrainConfig
from .files import RunSpec, save_spec
from .methods import Method, get_method
from .status import HEARTBEAT_SECONDS, write_status
from .threads import resolve_threads

CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
LATEST_PREFIXES = ("epoch", "steps")  # the checkpoints resume picks from; "best-" ones are kept apart


class TaskModule(CotModule):
    """A task's model trained with a method; COT's optimizers shared or separate as configured."""

    def __init__(
        self, model: nn.Module, num_classes: int, ignore_index: int, method: Method, config: ResolvedTrainConfig
    ):
        super().__init__(
            mode=method.mode,
            primary_loss=method.primary_loss,
            complement_weight=config.complement_weight,
            ignore_index=ignore_index,
            num_classes=num_classes,
            accumulate_grad_batches=config.accumulate_grad_batches,
        )
        self.model = model
        self.config = config
        self.epoch_factor = method.epoch_factor  # ce_2x stretches the schedule with its epochs

    def forward(self, inputs: Any) -> Tensor:
        return self.model(inputs)

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        return cls(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def configure_optimizers(self):
        count = 2 if self.config.cot_optimizers == "separate" and self.mode == "alternate" else 1
        optimizers = [self._optimizer() for _ in range(count)]  # CE's, complement's: same settings, own state
        schedulers = [s for s in (self._scheduler(o) for o in optimizers) if s is not None]
        if schedulers:
            return optimizers, schedulers
        return optimizers if count == 2 else optimizers[0]

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The run's epoch-based schedule. Epochs, not steps: the total step count would need
        ``trainer.estimated_stepping_batches``, which stops a stateful loader's restore (Lightning #20550)."""
        c, factor = self.config, self.epoch_factor
        if c.lr_schedule == "step":
            assert c.lr_milestones is not None
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, [m * factor for m in c.lr_milestones], c.lr_gamma)
        if c.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.max_epochs * factor)
        return None


class History(pl.Callback):
    """Per-epoch validation metrics, the epoch's training loss and cumulative forward/backward
    passes (kept in checkpoints)."""

    def __init__(self, passes_per_batch: int):
        self.passes_per_batch = passes_per_batch
        self.passes = 0
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.passes += self.passes_per_batch

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_") and v.numel() == 1}
        row = {"epoch": trainer.current_epoch + 1, "passes": self.passes, **metrics}
        train_loss = module.epoch_means.get("train_loss")  # this epoch's, logged before its validation
        if train_loss is not None:
            row["train_loss"] = float(train_loss)
        self.rows.append(row)

    def state_dict(self) -> dict[str, Any]:
        return {"passes": self.passes, "rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.passes, self.rows = state_dict["passes"], list(state_dict["rows"])


def checkpoint_callbacks(directory: Path, config: ResolvedTrainConfig) -> list[CotCheckpoint]:
    """The latest epoch-end checkpoint, the latest step-interval one and the best, one file each."""
    callbacks = [CotCheckpoint(dirpath=directory, filename="{epoch}-{step}", save_top_k=1, every_n_epochs=1)]
    if config.checkpoint_every_n_steps:
        every = config.checkpoint_every_n_steps
        callbacks.append(
            CotCheckpoint(dirpath=directory, filename="steps-{epoch}-{step}", save_top_k=1, every_n_train_steps=every)
        )
    if config.keep_best:
        metric, mode = config.keep_best, BEST_MODES[config.keep_best]
        callbacks.append(
            CotCheckpoint(dirpath=directory, filename="best-{epoch}-{step}", monitor=metric, mode=mode, save_top_k=1)
        )
    return callbacks


def _latest_kind(run_dir: Path) -> list[tuple[int, float, Path]]:
    found = []
    for path in (Path(run_dir) / CHECKPOINTS).glob("*.ckpt"):
        match = re.search(r"step=(\d+)", path.name)
        if match and path.name.startswith(LATEST_PREFIXES) and path.is_file():
            found.append((int(match.group(1)), path.stat().st_mtime, path))
    return found


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the most optimizer steps (epoch-end or step-interval), if any."""
    found = _latest_kind(run_dir)
    return max(found)[2] if found else None


def _keep_only(run_dir: Path, checkpoint: Path | None) -> None:
    """Before resuming from ``checkpoint``, drop the older epoch/step checkpoints that earlier
    processes left (each process keeps the one it resumed from), so they stay few."""
    for _, _, path in _latest_kind(run_dir):
        if path != checkpoint:
            path.unlink(missing_ok=True)


@torch.no_grad()
def predict(module: TaskModule, loader: DataLoader, ignore_index: int) -> dict[str, Tensor]:
    module.eval()
    probs, targets = [], []
    for batch in loader:
        logits, target = module.logits_and_target(batch)
        assert isinstance(logits, Tensor), "the tasks' models return materialized logits"
        logits, target = flatten_kept(logits.float(), target, ignore_index)
        probs.append(logits.softmax(-1))
        targets.append(target)
    return {"probs": torch.cat(probs), "target": torch.cat(targets)}


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
    write_status(run_dir, "running")
    start = time.perf_counter()
    try:
        record = _train_and_predict(task, spec, method, run_dir, progress, resume, jobs)
    except DivergenceError as error:
        write_status(run_dir, "diverged", error=str(error))
        raise
    except (KeyboardInterrupt, SystemExit) as error:
        write_status(run_dir, "interrupted", error=type(error).__name__)
        raise
    except BaseException as error:
        write_status(run_dir, "failed", error=f"{type(error).__name__}: {error}")
        raise
    record.wall_time_s = time.perf_counter() - start
    write_json(run_dir / "record.json", record.to_dict())
    write_status(run_dir, "complete", epochs=config.max_epochs * method.epoch_factor)
    return record


def _train_and_predict(
    task, spec: RunSpec, method: Method, run_dir: Path, progress: bool, resume: bool, jobs: int
) -> RunRecord:
    config = spec.train
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    module = TaskModule(task.build_model(), task.num_classes, task.ignore_index, method, config)
    if resume and spec.threads == "auto" and spec.threads_used is not None:
        threads = spec.threads_used  # the count it started with: another would change the last bits
    else:
        threads = resolve_threads(spec.threads, module, jobs)
    torch.set_num_threads(threads)
    save_spec(run_dir, dataclasses.replace(spec, threads_used=threads))
    train = resumable_loader(task.train, config.batch_size, seed=spec.seed, collate_fn=task.collate_fn)
    evaluation = {"batch_size": max(config.batch_size, 256), "collate_fn": task.collate_fn}
    val, test = DataLoader(task.val, **evaluation), DataLoader(task.test, **evaluation)
    history = History(passes_per_batch=len(module.objective.phases))
    callbacks = [history, DivergenceGuard(), Heartbeat(run_dir), *checkpoint_callbacks(run_dir / CHECKPOINTS, config)]
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        max_epochs=config.max_epochs * method.epoch_factor,
        logger=_loggers(run_dir),
        default_root_dir=run_dir,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    if resume:
        remove_stale_temporaries(run_dir)  # a kill during a write leaves its temporary file behind
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume:
        _keep_only(run_dir, checkpoint)
    with warnings.catch_warnings():
        # Lightning's advice for manual optimization (save a pre-step copy of the model) does not
        # apply: COT's checkpoints are taken after a complete step, which is what resume needs.
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        trainer.fit(module, train, val, ckpt_path=checkpoint, weights_only=True)
    tested = trainer.test(module, test, verbose=False)[0]
    with atomic_path(run_dir / "predictions.pt") as temporary:
        torch.save(predict(module, test, task.ignore_index), temporary)
    write_json(run_dir / "history.json", history.rows)
    return RunRecord(
        method=spec.method,
        seed=spec.seed,
        history=history.rows,
        test={k: float(v) for k, v in tested.items() if k.startswith("test_")},
        predictions_path=str(run_dir / "predictions.pt"),
        run_dir=str(run_dir),
        task=spec.task,
        num_classes=task.num_classes,
    )


logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


class Heartbeat(pl.Callback):
    """Refreshes a running run's ``status.json`` every ``HEARTBEAT_SECONDS`` and at epoch ends."""

    def __init__(self, run_dir: Path, interval: float = HEARTBEAT_SECONDS):
        self.run_dir = Path(run_dir)
        self.interval = interval
        self._last = time.monotonic()

    def beat(self) -> None:
        write_status(self.run_dir, "running")
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.monotonic() - self._last >= self.interval:
            self.beat()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.beat()
