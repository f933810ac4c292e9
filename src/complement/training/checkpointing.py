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

A checkpoint is plain data (``torch.load(weights_only=True)`` accepts it), but
``ModelCheckpoint`` restores file paths from it (``best_model_path``, ``last_model_path``,
``kth_best_model_path``, the keys of ``best_k_models``) and later deletes them when a better
or newer checkpoint replaces them. Its check that such a path lies in its folder does not
resolve ``..`` or symbolic links, so a crafted checkpoint could have any file deleted.
:class:`CotCheckpoint` keeps only restored paths that resolve inside its folder, and warns
of each one it drops.

A checkpoint can also be damaged after it was written (a bad disk, a copy cut short, a
flipped bit), and a damaged file may still load, with other numbers. So
:class:`AtomicCheckpointIO` also writes the file's SHA-256 beside it, in ``sha256sum``'s
format (``<name>.ckpt.sha256``; ``sha256sum -c`` checks it too), before the checkpoint
itself takes its name: a checkpoint that exists always has its checksum.
:func:`verify_checkpoint` says why a file cannot be resumed from, or ``None`` when it can.

    trainer = Trainer(plugins=[AtomicCheckpointIO()], callbacks=[CotCheckpoint(dirpath, every_n_train_steps=500)])
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .._atomic import atomic_path, write_text
from ._lightning_compat import checkpoint_interval, checkpoint_saved_at, is_last_batch, save_checkpoint_now


class CotCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose step-interval saves come only right after an optimizer step,
    and wait for the epoch's end when that step closes the epoch; and which restores from a
    checkpoint only the file paths that lie in its own folder (the ones it may later delete)."""

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

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(_paths_inside(state_dict, self.dirpath, self.mode))


_PATH_KEYS = ("best_model_path", "last_model_path", "kth_best_model_path")


def _inside(path: Any, folder: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is a local file that, ``..`` and symbolic links resolved, lies in ``folder``."""
    if not isinstance(path, (str, os.PathLike)) or folder is None:
        return False
    file, directory = str(os.fspath(path)), os.fspath(folder)
    if "://" in file or "://" in directory:  # a URL: Lightning deletes remote files without any check
        return False
    real, real_directory = os.path.realpath(file), os.path.realpath(directory)
    return os.path.commonpath([real, real_directory]) == real_directory and real != real_directory


def _paths_inside(
    state_dict: dict[str, Any], folder: str | os.PathLike[str] | None, mode: str = "min"
) -> dict[str, Any]:
    """``ModelCheckpoint`` state with each restored file path outside ``folder`` dropped, with a warning."""
    state = dict(state_dict)
    dropped: set[str] = set()

    def drop(path: Any) -> None:
        if str(path) in dropped:
            return
        dropped.add(str(path))
        warnings.warn(
            f"checkpoint state names {path!r}, which is not inside the checkpoint folder {folder!r}; "
            "ignored (a checkpoint can only refer to, and so later delete, files in its own folder)",
            stacklevel=3,
        )

    for key in _PATH_KEYS:
        path = state.get(key)
        if path and not _inside(path, folder):
            drop(path)
            state[key] = ""
    best_k = state.get("best_k_models")
    if best_k:
        kept: dict[Any, Any] = {}
        for path, score in best_k.items():
            if _inside(path, folder):
                kept[path] = score
            else:
                drop(path)
        state["best_k_models"] = kept
        if kept and state.get("kth_best_model_path") not in kept:  # Lightning pops the k-th path from best_k_models
            worst = max if mode == "min" else min
            state["kth_best_model_path"] = worst(kept, key=lambda path: kept[path])
            state["kth_value"] = kept[state["kth_best_model_path"]]
    return state


CHECKSUM_SUFFIX = ".sha256"


def checksum_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Where :class:`AtomicCheckpointIO` writes the SHA-256 of ``checkpoint``."""
    path = Path(checkpoint)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checkpoint(path: str | os.PathLike[str]) -> str | None:
    """Why the checkpoint file ``path`` cannot be resumed from, or ``None`` when it can.

    With a checksum file beside it (:func:`checksum_path`) the SHA-256 must match; a
    checkpoint without one (written by another writer) must load with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        return "it is not a file"
    if path.stat().st_size == 0:
        return "it is empty"
    checksum = checksum_path(path)
    if checksum.is_file():
        expected = checksum.read_text(errors="replace").split(" ", 1)[0].strip()
        actual = _sha256(path)
        if actual != expected:
            return f"its SHA-256 ({actual[:12]}...) is not the one written beside it in {checksum.name}"
        return None
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # every way a damaged file fails to load: zip, pickle, short read
        first_line = str(error).splitlines()[0] if str(error) else "no message"
        return f"it cannot be read ({type(error).__name__}: {first_line})"
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing local files whole or not at all, each with its
    SHA-256 beside it (removed with it); remote paths keep Lightning's own writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # a remote filesystem: Lightning's fsspec writer
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)
            # the checksum first: a kill between the two renames leaves a checksum without its
            # file (ignored), never a checkpoint without its checksum
            write_text(checksum_path(path), f"{_sha256(temporary)}  {Path(path).name}\n")

    def remove_checkpoint(self, path: Any) -> None:
        super().remove_checkpoint(path)
        if "://" not in str(path):
            checksum_path(path).unlink(missing_ok=True)
