"""The run's own Lightning callbacks: the per-epoch history (kept in checkpoints), the status
heartbeat, a line per epoch for output that is not a terminal, and what a resume restored."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from .status import HEARTBEAT_SECONDS, write_status


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


class EpochLines(pl.Callback):
    """One plain line per epoch (for a pipe or a log file, where progress bars turn into column salad)."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._started = time.monotonic()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        shown = {k: float(v) for k, v in trainer.callback_metrics.items() if k in SHOWN and v.numel() == 1}
        for name, value in getattr(pl_module, "epoch_means", {}).items():  # this epoch's, before its validation
            if name in ("train_loss", "cot_loss"):
                shown[name] = float(value)
        values = "  ".join(f"{k} {shown[k]:.4f}" for k in sorted(shown, key=lambda k: (not k.startswith("train"), k)))
        took = time.monotonic() - self._started
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {values}  ({took:.1f} s)", flush=True)


SHOWN = ("val_loss", "val_acc", "val_nll", "val_ece")


class SayResumed(pl.Callback):
    """After Lightning restores ``checkpoint``: which one, the epoch and step it restored, and what is left."""

    def __init__(self, checkpoint: Path):
        self.checkpoint = Path(checkpoint)

    def on_train_start(self, trainer, pl_module) -> None:
        done, total = trainer.current_epoch, trainer.max_epochs
        print(
            f"complement: resumed from {self.checkpoint.name}: epoch {done} of {total} done, optimizer step "
            f"{trainer.global_step}; {total - done} epoch(s) left",
            file=sys.stderr,
            flush=True,
        )
