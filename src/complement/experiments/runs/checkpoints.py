"""A run's checkpoint files: which ones are written, which one resume picks, and which are pruned.

Resume takes the newest checkpoint that verifies (its SHA-256, or a clean load for one
written without it: :func:`complement.training.checkpointing.verify_checkpoint`). A damaged
one is renamed ``damaged-<name>`` (kept, for a look, never picked again) and the next newest
is tried, saying so. The older checkpoints that earlier processes left are pruned only once
the resumed run has written a newer one (:class:`PruneWhenSuperseded`): until then a failed
resume leaves everything it found.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ...training.checkpointing import CHECKSUM_SUFFIX, CotCheckpoint, checksum_path, verify_checkpoint
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


DAMAGED_PREFIX = "damaged-"


def checkpoints_by_step(run_dir: Path, prefixes: tuple[str, ...] = LATEST_PREFIXES) -> list[tuple[int, float, Path]]:
    """``(optimizer step, mtime, path)`` of each checkpoint file of ``run_dir`` whose name starts with ``prefixes``."""
    found = []
    for path in (Path(run_dir) / CHECKPOINTS).glob("*.ckpt"):
        match = re.search(r"step=(\d+)", path.name)
        if match and path.name.startswith(prefixes) and path.is_file():
            found.append((int(match.group(1)), path.stat().st_mtime, path))
    return found


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the most optimizer steps (epoch-end or step-interval), if any."""
    found = checkpoints_by_step(run_dir)
    return max(found)[2] if found else None


def _say(message: str) -> None:
    print(f"complement: {message}", file=sys.stderr, flush=True)


def _set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint (and its checksum) so that no resume picks it again."""
    aside = path.with_name(DAMAGED_PREFIX + path.name)
    path.replace(aside)
    if checksum_path(path).exists():
        checksum_path(path).replace(checksum_path(aside))
    return aside


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resumed run continues from (``None``: from step 0), and the
    checkpoints left by earlier processes, to prune once a newer one is written."""

    checkpoint: Path | None
    superseded: tuple[Path, ...]


def resume_point(run_dir: Path) -> ResumePoint:
    """The newest checkpoint of ``run_dir`` that verifies; damaged newer ones are set aside, with a message."""
    checkpoints = Path(run_dir) / CHECKPOINTS
    for checksum in checkpoints.glob(f"*.ckpt{CHECKSUM_SUFFIX}"):  # a kill between the two renames of a save
        if not checksum.with_suffix("").exists():
            checksum.unlink(missing_ok=True)
    found = [path for _, _, path in sorted(checkpoints_by_step(run_dir), reverse=True)]
    damaged: list[Path] = []
    for path in found:
        problem = verify_checkpoint(path)
        if problem is None:
            if damaged:
                _say(f"resuming from {path.name}, the newest checkpoint that verifies (steps since are trained again)")
            return ResumePoint(path, tuple(p for p in found if p not in damaged))
        aside = _set_aside(path)
        damaged.append(path)
        _say(f"checkpoint {path} is damaged: {problem}. Renamed {aside.name}; trying an older one.")
    if damaged:
        _say(f"no checkpoint of {run_dir} verifies; training starts again from step 0")
    else:
        _say(f"{run_dir} has no checkpoint yet (stopped before its first one); training starts from step 0")
    return ResumePoint(None, ())


class PruneWhenSuperseded(pl.Callback):
    """Delete the checkpoints an earlier process left once this run has written a newer one.

    Checked at the hooks after a checkpoint callback may have saved (Lightning calls those
    last in each hook, so a save is seen one hook later) and at the end of training."""

    def __init__(self, run_dir: Path, superseded: tuple[Path, ...]):
        self.run_dir, self.superseded = Path(run_dir), set(superseded)

    def _prune_if_superseded(self) -> None:
        if not self.superseded:
            return
        newer = {path for _, _, path in checkpoints_by_step(self.run_dir)} - self.superseded
        if newer:
            for path in self.superseded:
                path.unlink(missing_ok=True)
                checksum_path(path).unlink(missing_ok=True)
            self.superseded = set()

    def on_train_batch_start(self, *args: Any, **kwargs: Any) -> None:
        self._prune_if_superseded()

    def on_train_epoch_start(self, *args: Any, **kwargs: Any) -> None:
        self._prune_if_superseded()

    def on_fit_end(self, *args: Any, **kwargs: Any) -> None:
        self._prune_if_superseded()
