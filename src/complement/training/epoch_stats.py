"""The epoch means ``CotModule`` logs: exact over kept targets, with no host sync per step."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class EpochStats:
    """An epoch's training logs, kept as device tensors (no per-step host sync).

    Each COT step's logged losses are weighted by the targets it trained on, so the
    epoch value is the mean over all kept targets; ``train_acc`` counts phase-1
    predictions. The per-step scalars are only collected; they are reduced every
    ``FLUSH_EVERY`` steps with one ``stack`` per quantity, because on CPU each small
    tensor op costs microseconds that would add up to a visible share of a small
    model's step. :meth:`compute` sums over DDP ranks in one collective."""

    FLUSH_EVERY = 256

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.groups = 0
        self.with_accuracy = True
        self._totals: dict[str, Tensor] = {}  # float64 sums of what has been flushed
        self._correct: list[Tensor] = []  # per batch
        self._kept: list[Tensor] = []  # per batch
        self._group_kept: list[Tensor] = []  # the batches of the open accumulation group
        self._weights: list[Tensor] = []  # per group: its kept targets
        self._logs: dict[str, list[Tensor]] = {}  # per group

    def add_batch(self, correct: Tensor | None, kept: Tensor) -> None:
        if correct is None:
            self.with_accuracy = False
        else:
            self._correct.append(correct)
        self._kept.append(kept)
        self._group_kept.append(kept)

    def add_group(self, logs: dict[str, Tensor]) -> None:
        kept = self._group_kept
        self._weights.append(kept[0] if len(kept) == 1 else torch.stack(kept).sum())
        self._group_kept = []
        for name, value in logs.items():
            self._logs.setdefault(name, []).append(value)
        self.groups += 1
        if len(self._weights) >= self.FLUSH_EVERY:
            self._flush()

    def _add(self, name: str, total: Tensor) -> None:
        total = total.double()
        self._totals[name] = self._totals[name] + total if name in self._totals else total

    def _flush(self) -> None:
        if self._weights:
            weights = torch.stack(self._weights).double()
            for name, values in self._logs.items():
                self._add(name, (torch.stack(values).double() * weights).sum())
        for name, values in (("correct", self._correct), ("kept", self._kept)):
            if values:
                self._add(name, torch.stack(values).sum())
        self._correct, self._kept, self._weights, self._logs = [], [], [], {}

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers (``torch.load(weights_only=True)`` accepts them), for checkpoints."""
        self._flush()
        if self._group_kept:
            raise RuntimeError("EpochStats.state_dict inside an accumulation group; save at group boundaries")
        return {"groups": self.groups, "with_accuracy": self.with_accuracy, "totals": dict(self._totals)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        self.groups, self.with_accuracy = int(state["groups"]), bool(state["with_accuracy"])
        self._totals = dict(state["totals"])

    def compute(self, strategy) -> dict[str, Tensor]:
        if not self.groups:
            return {}
        self._flush()
        names = sorted(n for n in self._totals if n not in ("correct", "kept"))
        kept_total = self._totals["kept"]
        correct = self._totals.get("correct", torch.zeros_like(kept_total))
        totals = strategy.reduce(torch.stack([*(self._totals[n] for n in names), correct, kept_total]), reduce_op="sum")
        kept = totals[-1].clamp(min=1)
        means = {name: (totals[i] / kept).float() for i, name in enumerate(names)}
        if self.with_accuracy:
            means["train_acc"] = (totals[-2] / kept).float()
        return means
