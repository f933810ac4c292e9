"""A task's model trained with a method: the LightningModule of every run, and its test predictions."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ...metrics import flatten_kept
from ...training.adversarial import AdversarialTraining
from ...training.lightning_module import CotModule
from .config import ResolvedTrainConfig
from .methods import Method


class TaskModule(CotModule):
    """A task's model trained with a method; COT's optimizers shared or separate as configured."""

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        ignore_index: int,
        method: Method,
        config: ResolvedTrainConfig,
        steps_per_epoch: int | None = None,
        adversarial: AdversarialTraining | None = None,
    ):
        super().__init__(
            mode=method.mode,
            primary_loss=method.primary_loss,
            primary_loss_kwargs=method.primary_loss_kwargs,
            complement_weight=config.complement_weight,
            ignore_index=ignore_index,
            num_classes=num_classes,
            accumulate_grad_batches=config.accumulate_grad_batches,
            adversarial=adversarial,
        )
        self.model = model
        self.config = config
        self.epoch_factor = method.epoch_factor  # ce_2x stretches the schedule with its epochs
        self.steps_per_epoch = steps_per_epoch  # optimizer (COT) steps an epoch, for step-based schedules

    def forward(self, inputs: Any) -> Tensor:
        return self.model(inputs)

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        return cls(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def configure_optimizers(self):
        count = 2 if self.config.cot_optimizers == "separate" and self.mode == "alternate" else 1
        optimizers = [self._optimizer() for _ in range(count)]  # CE's, complement's: same settings, own state
        schedulers = [s for s in (self._scheduler(o) for o in optimizers) if s is not None]
        if schedulers:
            return optimizers, schedulers
        return optimizers if count == 2 else optimizers[0]

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """The run's schedule: epoch-based, or for ``warmup_linear`` step-based over the run's
        optimizer steps, counted from the loader (``trainer.estimated_stepping_batches`` stops a
        stateful loader's restore, Lightning #20550)."""
        c, factor = self.config, self.epoch_factor
        if c.lr_schedule == "warmup_linear":
            if self.steps_per_epoch is None:
                raise ValueError("lr_schedule warmup_linear needs the module's steps_per_epoch")
            total = c.max_epochs * factor * self.steps_per_epoch
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupLinear(round(c.lr_warmup * total), total))
            return {"scheduler": schedule, "interval": "step"}
        if c.lr_schedule == "step":
            assert c.lr_milestones is not None
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, c.milestone_epochs(c.max_epochs * factor, factor),
                                                        c.lr_gamma)  # fmt: skip
        if c.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.max_epochs * factor)
        return None


class WarmupLinear:
    """The learning-rate factor at step ``s``: ``s / warmup`` up to ``warmup``, then falling linearly
    to 0 at ``total`` (as Hugging Face's ``get_linear_schedule_with_warmup``). A class, not a
    closure, so the scheduler's state (this object's ``__dict__``) goes into checkpoints."""

    def __init__(self, warmup: int, total: int):
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / self.warmup
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))


@torch.no_grad()
def predict(module: TaskModule, loader: DataLoader, ignore_index: int) -> dict[str, Tensor]:
    module.eval()
    probs, targets = [], []
    for batch in loader:
        logits, target = module.logits_and_target(batch)
        assert isinstance(logits, Tensor), "the tasks' models return materialized logits"
        logits, target = flatten_kept(logits.float(), target, ignore_index)
        probs.append(logits.softmax(-1))
        targets.append(target)
    return {"probs": torch.cat(probs), "target": torch.cat(targets)}
