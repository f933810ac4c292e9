"""Every use of Lightning's internals by ``CotModule``, in one place.

Manual optimization leaves gaps that Lightning's public API does not fill; each
helper below fills one with an internal, and ``tests/training/test_lightning_compat.py`` checks
each against the installed Lightning, so an upgrade that moves one fails there first.
Checked against ``CHECKED_LIGHTNING`` (see ``pyproject.toml``'s floor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

CHECKED_LIGHTNING = "2.2 - 2.6"

_module_trainer: property = pl.LightningModule.__dict__["trainer"]  # the property object, reused below


@contextmanager
def step_not_counted(optimizer: Any) -> Iterator[None]:
    """Step a ``LightningOptimizer`` without advancing Lightning's optimizer-step progress.

    ``trainer.global_step`` counts every optimizer step (upstream #17958), so COT's second
    step would double it and break ``max_steps``, step-interval checkpoints and schedulers.
    Lightning counts a step in the optimizer's ``_on_before_step``/``_on_after_step`` hooks."""
    before, after = optimizer._on_before_step, optimizer._on_after_step
    optimizer._on_before_step = optimizer._on_after_step = lambda: None
    try:
        yield
    finally:
        optimizer._on_before_step, optimizer._on_after_step = before, after


def loggers_will_write(trainer: pl.Trainer) -> bool:
    """Whether the loggers write on this step (``log_every_n_steps``).

    ``self.log`` costs ~1 ms per call on CPU, so step values are logged only then."""
    return bool(getattr(trainer._logger_connector, "should_update_logs", True))


def is_last_batch(trainer: pl.Trainer) -> bool:
    """Whether the batch being trained is the epoch's last, also for loaders of unknown length.

    Lightning prefetches one batch, so it knows this before ``training_step`` runs."""
    return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def checkpoint_interval(callback: ModelCheckpoint) -> int:
    """``every_n_train_steps`` of a ``ModelCheckpoint`` (0: no step-interval saves)."""
    return int(callback._every_n_train_steps)


def checkpoint_saved_at(callback: ModelCheckpoint) -> int:
    """The global step of the callback's last save."""
    return int(callback._last_global_step_saved)


def save_checkpoint_now(callback: ModelCheckpoint, trainer: pl.Trainer) -> None:
    """Save as the callback would at a step interval (top-k and ``last``), unless it already saved this step."""
    if callback._should_skip_saving_checkpoint(trainer):
        return
    candidates = callback._monitor_candidates(trainer)
    callback._save_topk_checkpoint(trainer, candidates)
    callback._save_last_checkpoint(trainer, candidates)


def checked_trainer_property(check: Callable[[pl.Trainer], None]) -> property:
    """``LightningModule.trainer`` that runs ``check(trainer)`` when a Trainer is attached.

    That happens before Lightning validates its own flags, so a Trainer flag that manual
    optimization refuses gets COT's message (which names the CotModule argument to use)."""

    get, set_ = _module_trainer.fget, _module_trainer.fset
    assert get is not None and set_ is not None, "LightningModule.trainer is a read-write property"

    def set_checked(module: pl.LightningModule, trainer: pl.Trainer | None) -> None:
        if trainer is not None:
            check(trainer)
        set_(module, trainer)

    return property(get, set_checked)
