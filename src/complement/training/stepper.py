"""The COT step, written once and driven by each front end.

One *COT step* consumes a group of ``k`` micro-batches (``k`` = gradient accumulation):

1. phase ``ce``: for each micro-batch, forward and backward ``loss / k``; then step.
2. phase ``complement`` (``alternate`` mode only): a fresh forward of each micro-batch
   with the updated weights, backward ``loss / k``; then step.

Phase 1 can run as micro-batches arrive (Lightning calls ``training_step`` once per
batch); phase 2 replays the buffered micro-batches. Front ends supply three callables:
``forward(batch, phase) -> (logits, target)``, ``backward(loss)`` and ``step(phase)``,
which clips, steps the phase's optimizer and zeroes the gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .objective import CotObjective

Forward = Callable[[Any, str], tuple[Tensor, Tensor]]


def check_finite_loss(phase: str, loss: Tensor) -> None:
    if not bool(torch.isfinite(loss)):
        raise FloatingPointError(
            f"COT phase '{phase}' produced a non-finite loss ({loss.item()}). Check the inputs for NaN/inf, "
            "lower the learning rate, or enable gradient clipping; pass check_finite=False to skip this check."
        )


def split_batch(batch: Any, fix: str) -> tuple[Any, Tensor]:
    """The default batch format ``(inputs, target)``; ``fix`` tells how to use another one."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"the default batch format is (inputs, target); got {type(batch).__name__}. {fix}")
    return batch[0], batch[1]


class CotStepper:
    def __init__(
        self,
        objective: CotObjective,
        forward: Forward,
        backward: Callable[[Tensor], None],
        step: Callable[[str], None],
        check_finite: bool = True,
    ):
        self.objective = objective
        self.forward = forward
        self.backward = backward
        self.step = step
        self.check_finite = check_finite
        self._logs: dict[str, Tensor] = {}

    def _run(self, phase: str, batch: Any, scale: float) -> None:
        logits, target = self.forward(batch, phase)
        part = self.objective.phase_loss(phase, logits, target)
        if self.check_finite:
            check_finite_loss(phase, part.loss)
        self.backward(part.loss * scale if scale != 1.0 else part.loss)
        for name, value in part.logs.items():  # no tensor op in the common case of one micro-batch
            value = value.float() if scale == 1.0 else value.float() * scale
            self._logs[name] = self._logs[name] + value if name in self._logs else value

    def first_phase(self, batch: Any, group_size: int) -> None:
        """Phase 1 (or the only phase) for one micro-batch of a group of ``group_size``."""
        self._run("ce", batch, 1.0 / group_size)

    def finish(self, batches: Sequence[Any]) -> dict[str, Tensor]:
        """Step phase 1, run and step phase 2 on ``batches``; return the group's mean losses."""
        self.step("ce")
        if "complement" in self.objective.phases:
            for batch in batches:
                self._run("complement", batch, 1.0 / len(batches))
            self.step("complement")
        logs, self._logs = self._logs, {}
        return logs

    def run(self, batches: Sequence[Any]) -> dict[str, Tensor]:
        """A whole COT step on a group of micro-batches."""
        if len(batches) == 0:
            raise ValueError("a COT step needs at least one batch; got an empty list")
        for batch in batches:
            self.first_phase(batch, len(batches))
        return self.finish(batches)


def group_size(batch_idx: int, accumulate: int, num_batches: float) -> int:
    """Size of the accumulation group that batch ``batch_idx`` belongs to (the last may be short)."""
    start = batch_idx - batch_idx % accumulate
    if math.isinf(num_batches):
        return accumulate
    return int(min(accumulate, num_batches - start))
