"""A run's checkpoint files: which ones are written, which one resume picks, and which are pruned."""

from __future__ import annotations

import re
from pathlib import Path

from ...training.checkpointing import CotCheckpoint
from .config import BEST_MODES, ResolvedTrainConfig

CHECKPOINTS = "checkpoints"
LATEST_PREFIXES = ("epoch", "steps")  # the checkpoints resume picks from; "best-" ones are kept apart


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


def keep_only(run_dir: Path, checkpoint: Path | None) -> None:
    """Before resuming from ``checkpoint``, drop the older epoch/step checkpoints that earlier
    processes left (each process keeps the one it resumed from), so they stay few."""
    for _, _, path in _latest_kind(run_dir):
        if path != checkpoint:
            path.unlink(missing_ok=True)
