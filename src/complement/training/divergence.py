"""Stop a run whose training loss diverged, before a checkpoint keeps the diverged weights.

The rule: after each COT step, the step's phase-1 loss (``train_loss``: cross-entropy,
or the method's primary loss) must be finite and at most::

    first + factor * max(|first|, 1)

where ``first`` is the first step's value (the untrained model's, about ``log K`` for
cross-entropy) and ``factor`` is 10. So a CE run on 10 classes stops above ~25.3 nats;
a loss bounded in ``[-1, 0]`` (the complement losses trained alone) stops only on a
non-finite value. The check runs before Lightning's checkpoint callback, so the last
checkpoint written is the last good one, and raises :class:`DivergenceError`.

    trainer = Trainer(callbacks=[DivergenceGuard(), ModelCheckpoint(...)])   # with a CotModule
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl

from .stepper import DivergenceError

__all__ = ["DivergenceError", "DivergenceGuard"]


class DivergenceGuard(pl.Callback):
    """Raise :class:`DivergenceError` after a COT step whose ``monitor``ed loss is non-finite or above
    ``first + factor * max(|first|, 1)`` (the rule of the module docstring)."""

    def __init__(self, factor: float = 10.0, monitor: str = "train_loss"):
        if not factor > 0:
            raise ValueError(f"DivergenceGuard factor must be > 0; got {factor}")
        self.factor = factor
        self.monitor = monitor
        self.first: float | None = None
        self._checked_step = -1

    def limit(self) -> float:
        assert self.first is not None
        return self.first + self.factor * max(abs(self.first), 1.0)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        logs = getattr(pl_module, "last_step_logs", None)
        if step == self._checked_step or not logs or self.monitor not in logs:
            return  # inside an accumulation group, or not a CotModule
        self._checked_step = step
        value = float(logs[self.monitor])
        if self.first is None and math.isfinite(value):
            self.first = value
            return
        if not math.isfinite(value) or value > self.limit():
            bound = "non-finite" if not math.isfinite(value) else f"above the limit {self.limit():.4g}"
            first = "none" if self.first is None else f"{self.first:.4g}"
            raise DivergenceError(
                f"training diverged at step {step}: {self.monitor} = {value:.4g}, {bound} (first step's value "
                f"{first} + {self.factor:g} x max(|first|, 1)). The last checkpoint before this step is kept. "
                "Lower the learning rate or enable gradient clipping, then start a new run."
            )

    def state_dict(self) -> dict[str, Any]:
        return {"first": self.first}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.first = state_dict["first"]
