"""The run's own Lightning callbacks: the per-epoch history (kept in checkpoints) and the status heartbeat."""

from __future__ import annotations

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
