"""Checkpoint files written atomically, for Lightning's ``ModelCheckpoint``.

Lightning's ``TorchCheckpointIO`` writes a local checkpoint through fsspec, whose
transaction writes the bytes in ``$TMPDIR`` and then moves them: atomic only when
``$TMPDIR`` is on the same filesystem, and never ``fsync``\\ ed. A kill or power loss
during a save can then leave a truncated ``last.ckpt``. :class:`AtomicCheckpointIO`
writes beside the target, fsyncs and renames (:mod:`complement._atomic`); remote paths
(``s3://`` and the like) keep Lightning's own writer.

    trainer = Trainer(plugins=[AtomicCheckpointIO()], callbacks=[ModelCheckpoint(...)])
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .._atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # a remote filesystem: Lightning's fsspec writer
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)
