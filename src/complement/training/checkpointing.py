"""Checkpoints for COT under Lightning: written atomically, and never where resume goes wrong.

:class:`CotCheckpoint` is Lightning's ``ModelCheckpoint`` with one change. A step-interval
checkpoint that falls on an epoch's last batch is taken at that epoch's end instead (after
its validation and epoch-end hooks, where Lightning's own epoch checkpoints go): Lightning
resumes from a checkpoint taken between an epoch's last batch and its end without running
that epoch's validation and ``on_train_epoch_end`` (epoch-interval schedulers then miss a
step), as found resuming a ``CotModule`` with ``every_n_train_steps``. And a step-interval
save happens only on a batch that took an optimizer step: after a resume, Lightning would
otherwise save again at the restored step on the next batch, inside an accumulation group,
where no checkpoint can hold the group's pending gradients.


Lightning's ``TorchCheckpointIO`` writes a local checkpoint through fsspec, whose
transaction writes the bytes in ``$TMPDIR`` and then moves them: atomic only when
``$TMPDIR`` is on the same filesystem, and never ``fsync``\\ ed. A kill or power loss
during a save can then leave a truncated ``last.ckpt``. :class:`AtomicCheckpointIO`
writes beside the target, fsyncs and renames (:mod:`complement._atomic`); remote paths
(``s3://`` and the like) keep Lightning's own writer.

    trainer = Trainer(plugins=[AtomicCheckpointIO()], callbacks=[CotCheckpoint(dirpath, every_n_train_steps=500)])
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .._atomic import atomic_path
from ._lightning_compat import checkpoint_interval, checkpoint_saved_at, is_last_batch, save_checkpoint_now


class CotCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose step-interval saves come only right after an optimizer step,
    and wait for the epoch's end when that step closes the epoch."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._save_at_epoch_end = False
        self._step_at_batch_start = -1

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any) -> None:
        every = checkpoint_interval(self)
        if every >= 1 and trainer.global_step == self._step_at_batch_start:
            # No step on this batch (inside an accumulation group): nothing to save. Lightning would
            # save here after a resume, whose first batches keep the restored step count.
            return
        if every >= 1 and is_last_batch(trainer) and trainer.global_step % every == 0:
            self._save_at_epoch_end = trainer.global_step != checkpoint_saved_at(self)
            return
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._save_at_epoch_end:
            save_checkpoint_now(self, trainer)
        self._save_at_epoch_end = False


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # a remote filesystem: Lightning's fsspec writer
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)
