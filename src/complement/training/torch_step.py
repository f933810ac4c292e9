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

Modes are yours, as in any PyTorch loop: call ``model.train()`` before training (a
model in eval mode trains without dropout, and ``CotStep`` warns once); submodules you
froze in eval mode stay so.

Exact resume: ``cot.state_dict()`` holds the model, the optimizer(s), the scaler, the
step count and every RNG state; save it with your loader's state (e.g.
:func:`complement.training.resumable_loader`) and restore both with ``load_state_dict``::

    torch.save({"cot": cot.state_dict(), "loader": loader.state_dict(), "epoch": epoch}, path)
    ...
    saved = torch.load(path, weights_only=True)
    cot.load_state_dict(saved["cot"]); loader.load_state_dict(saved["loader"])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .adversarial import AdversarialTraining, Adversary
from .objective import CotConfig, CotObjective, LinearLogits, LossFn, Phase, refuse_unused_parameter_search
from .rng import rng_state, set_rng_state
from .stepper import (
    CotStepper,
    check_clipping,
    check_optimizers_train,
    clip_gradients,
    split_batch,
    split_optimizers,
)


def default_logits_and_target(model: nn.Module, batch: Any) -> tuple[Tensor, Tensor]:
    inputs, target = split_batch(
        batch, "Pass logits_and_target=... to tell COT how to get (logits, target) from your batches."
    )
    return model(inputs), target


class CotStep:
    """COT's two steps (or one, in ``joint`` and ``off`` modes) for a plain PyTorch loop: see the module
    docstring. ``step(batch)`` trains on one batch, ``step(micro_batches=[...])`` on an accumulation
    group, and returns the step's losses (``train_loss``, ``cot_loss``, ...)."""

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
        adversarial: AdversarialTraining | None = None,
    ):
        check_clipping(gradient_clip_val, gradient_clip_algorithm)
        self.model = model
        self.ce_optimizer, self.complement_optimizer = split_optimizers(optimizers)
        check_optimizers_train(model, [self.ce_optimizer, self.complement_optimizer], "CotStep")
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
        self.steps = 0  # COT steps taken (restored by load_state_dict)
        self._warned_eval = False
        self._stepper = CotStepper(
            self.objective,
            self._logits_and_target_of,
            self._backward,
            self._step,
            check_finite,
            adversary=None if adversarial is None else Adversary(adversarial, model),
        )

    def _logits_and_target_of(self, batch: Any, phase: Phase) -> tuple[Tensor | LinearLogits, Tensor]:
        logits, target = self.logits_and_target(self.model, batch)
        refuse_unused_parameter_search(self.model, logits, "Wrap the model with find_unused_parameters=False.")
        return logits, target

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
        if not self.model.training and not self._warned_eval:
            self._warned_eval = True
            warnings.warn(
                f"CotStep: the model ({type(self.model).__name__}) is in eval mode, so dropout is off and BatchNorm "
                "statistics are frozen while it trains. Call model.train() before training (CotStep leaves modes "
                "to you, so that modules you froze in eval mode stay so).",
                UserWarning,
                stacklevel=2,
            )
        logs = self._stepper.run([batch] if micro_batches is None else list(micro_batches))
        self.steps += 1
        return logs

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed loop needs from CotStep: model, optimizer(s), scaler, step count, RNG states.

        Plain tensors and containers, so ``torch.load(weights_only=True)`` reads it back."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "ce_optimizer": self.ce_optimizer.state_dict(),
            "steps": self.steps,
            "rng": rng_state(),
        }
        if self.complement_optimizer is not self.ce_optimizer:
            state["complement_optimizer"] = self.complement_optimizer.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def sharded_state_dict(self) -> dict[str, Any]:
        """The same for a sharded model (FSDP2 ``fully_shard``, also DDP), in the form
        ``torch.distributed.checkpoint.save`` writes: each rank's shards, the optimizers'
        states keyed by parameter name (one entry each: two optimizers over the same
        parameters would collide in one), and every rank's RNG states under its own key.

            dcp.save(cot.sharded_state_dict(), checkpoint_id=path)   # on every rank
            state = cot.sharded_state_dict(); dcp.load(state, checkpoint_id=path)
            cot.load_sharded_state_dict(state)"""
        from torch.distributed import get_rank
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        state: dict[str, Any] = {
            "model": get_model_state_dict(self.model),
            "ce_optimizer": get_optimizer_state_dict(self.model, self.ce_optimizer),
            "steps": torch.tensor(self.steps),
            f"rng_rank{get_rank()}": rng_state(),
        }
        if self.complement_optimizer is not self.ce_optimizer:
            state["complement_optimizer"] = get_optimizer_state_dict(self.model, self.complement_optimizer)
        return state

    def load_sharded_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`sharded_state_dict` saved (after ``torch.distributed.checkpoint.load``)."""
        from torch.distributed import get_rank
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        set_model_state_dict(self.model, state["model"])
        set_optimizer_state_dict(self.model, self.ce_optimizer, state["ce_optimizer"])
        if self.complement_optimizer is not self.ce_optimizer:
            set_optimizer_state_dict(self.model, self.complement_optimizer, state["complement_optimizer"])
        self.steps = int(state["steps"])
        set_rng_state(state[f"rng_rank{get_rank()}"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        separate = self.complement_optimizer is not self.ce_optimizer
        if separate != ("complement_optimizer" in state):
            saved, now = ("two optimizers", "one") if not separate else ("one optimizer", "two")
            raise ValueError(f"CotStep.load_state_dict: the state was saved with {saved}, this CotStep has {now}")
        if (self.scaler is not None) != ("scaler" in state):
            raise ValueError("CotStep.load_state_dict: the state and this CotStep disagree on using a GradScaler")
        self.model.load_state_dict(state["model"])
        self.ce_optimizer.load_state_dict(state["ce_optimizer"])
        if separate:
            self.complement_optimizer.load_state_dict(state["complement_optimizer"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.steps = int(state["steps"])
        set_rng_state(state["rng"])
