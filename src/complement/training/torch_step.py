"""COT in a plain PyTorch loop.

    cot = CotStep(model, torch.optim.Adam(model.parameters(), 1e-3))      # one shared optimizer
    cot = CotStep(model, [sgd_ce, sgd_complement])                        # or the authors' two
    for x, y in loader:
        losses = cot.step((x, y))        # {'train_loss': ..., 'cot_loss': ...}

``step(batch)`` takes one batch; ``step(micro_batches=[...])`` accumulates several into one step.
Batches are ``(inputs, target)`` by default; pass ``logits_and_target(model, batch)``
for anything else (e.g. Hugging Face dicts). Mixed precision: pass a
``torch.amp.GradScaler`` and run under ``torch.autocast``; gradients are unscaled
before clipping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .objective import CotConfig, CotObjective, LossFn, Phase
from .stepper import CotStepper, check_clipping, clip_gradients, split_batch, split_optimizers


def default_logits_and_target(model: nn.Module, batch: Any) -> tuple[Tensor, Tensor]:
    inputs, target = split_batch(
        batch, "Pass logits_and_target=... to tell COT how to get (logits, target) from your batches."
    )
    return model(inputs), target


class CotStep:
    def __init__(
        self,
        model: nn.Module,
        optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
        mode: str = "alternate",
        complement_loss: str | LossFn = "complement_entropy",
        complement_weight: float = 1.0,
        ignore_index: int = -100,
        logits_and_target: Callable[[nn.Module, Any], tuple[Tensor, Tensor]] = default_logits_and_target,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        scaler: torch.amp.GradScaler | None = None,
        check_finite: bool = True,
        complement_loss_kwargs: dict | None = None,
        primary_loss: str | LossFn = "cross_entropy",
        primary_loss_kwargs: dict | None = None,
    ):
        check_clipping(gradient_clip_val, gradient_clip_algorithm)
        self.model = model
        self.ce_optimizer, self.complement_optimizer = split_optimizers(optimizers)
        self.objective = CotObjective(
            CotConfig(
                mode=mode,
                complement_loss=complement_loss,
                complement_weight=complement_weight,
                ignore_index=ignore_index,
                complement_loss_kwargs=complement_loss_kwargs,
                primary_loss=primary_loss,
                primary_loss_kwargs=primary_loss_kwargs,
            )
        )
        self.logits_and_target = logits_and_target
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.scaler = scaler
        self._stepper = CotStepper(
            self.objective,
            lambda batch, phase: self.logits_and_target(self.model, batch),
            self._backward,
            self._step,
            check_finite,
        )

    def _backward(self, loss: Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _step(self, phase: Phase) -> None:
        optimizer = self.complement_optimizer if phase == Phase.COMPLEMENT else self.ce_optimizer
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        clip_gradients(params, self.gradient_clip_val, self.gradient_clip_algorithm)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        # All of the model's gradients, not only the optimizer's: with two optimizers over
        # different parameters, no gradient of one phase may reach the other's step.
        optimizer.zero_grad(set_to_none=True)
        self.model.zero_grad(set_to_none=True)

    def step(self, batch: Any = None, *, micro_batches: Sequence[Any] | None = None) -> dict[str, Tensor]:
        """One COT step on ``batch``, or on ``micro_batches`` accumulated into one step.

        Returns the detached mean losses (``train_loss``, and ``cot_loss`` unless mode is ``off``)."""
        if (batch is None) == (micro_batches is None):
            raise ValueError("pass either one batch or micro_batches=[...] to CotStep.step, not both or neither")
        self.model.train()
        return self._stepper.run([batch] if micro_batches is None else list(micro_batches))
