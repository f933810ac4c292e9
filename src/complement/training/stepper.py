"""The COT step, written once and driven by each front end.

One *COT step* consumes a group of ``k`` micro-batches (``k`` = gradient accumulation):

1. phase ``ce``: for each micro-batch, forward and backward ``loss / k``; then step.
2. phase ``complement`` (``alternate`` mode only): a fresh forward of each micro-batch
   with the updated weights, backward ``loss / k``; then step.

Phase 1 can run as micro-batches arrive (Lightning calls ``training_step`` once per
batch); phase 2 replays the buffered micro-batches. Front ends supply three callables:
``forward(batch, phase) -> (logits, target)``, ``backward(loss)`` and ``step(phase)``,
which clips, steps the phase's optimizer and zeroes the gradients. A front end whose
own loop makes the last step of a group (the Hugging Face Trainer) passes
``step_last=False`` to :meth:`CotStepper.finish`.

The helpers every front end shares (one or two optimizers, clipping, the batch format,
the finite-loss check) are here too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor

from .adversarial import Adversary, trades_kl
from .objective import CotObjective, LinearLogits, Phase, PhaseLoss

Forward = Callable[[Any, Phase], tuple["Tensor | LinearLogits", Tensor]]
CLIP_ALGORITHMS = ("norm", "value")


def split_optimizers(optimizers: Any) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """One optimizer (shared by both phases) or two (CE, complement) over the same parameters,
    given alone or in any iterable (a list, a tuple, a generator)."""
    if isinstance(optimizers, torch.optim.Optimizer) or type(optimizers).__name__ == "LightningOptimizer":
        return optimizers, optimizers
    try:
        items = list(optimizers)
    except TypeError:
        raise TypeError(
            f"COT needs an optimizer, or a list of two (CE, complement); got {type(optimizers).__name__}"
        ) from None
    for index, item in enumerate(items):
        if not hasattr(item, "step") or not hasattr(item, "zero_grad"):
            raise TypeError(f"optimizers[{index}] is {type(item).__name__}, not an optimizer")
    if len(items) == 0:
        raise ValueError("COT needs an optimizer: pass one (shared by both steps) or two (CE, complement); got none")
    if len(items) > 2:
        raise ValueError(f"COT takes one optimizer (shared) or two (CE, complement); got {len(items)}")
    return items[0], items[-1]


def check_optimizers_train(model: torch.nn.Module, optimizers: Sequence[Any], who: str) -> None:
    """Refuse a model with no trainable parameter, and an optimizer holding none of the model's
    trainable parameters (its steps would train nothing); warn about optimizer parameters that
    are not the model's (COT gives them no gradient). Identity is what counts, as for autograd."""
    params = list(model.parameters())
    trainable = {id(p) for p in params if p.requires_grad}
    if not trainable:
        raise ValueError(
            f"{who}: no parameter of the model requires grad (a frozen model, e.g. after requires_grad_(False)), so "
            "COT would train nothing and its backward would fail. Unfreeze what should train before training: "
            "model.requires_grad_(True), or requires_grad_(True) on the layers to fine-tune."
        )
    known = {id(p) for p in params}
    distinct = list({id(o): o for o in optimizers}.values())  # one optimizer shared by both phases counts once
    for index, optimizer in enumerate(distinct):
        name = "the optimizer" if len(distinct) == 1 else f"optimizers[{index}]"
        own = [p for group in getattr(optimizer, "param_groups", None) or [] for p in group["params"]]
        if not own:  # not a torch optimizer (no param_groups): nothing to check
            continue
        if not any(id(p) in trainable for p in own):
            raise ValueError(
                f"{who}: {name} holds none of the model's trainable parameters, so its steps would train nothing. "
                "Build it from this model's parameters, e.g. torch.optim.SGD(model.parameters(), lr=...), after "
                "wrapping the model (DDP, FSDP) and with the parameters to train unfrozen."
            )
        outside = sum(id(p) not in known for p in own)
        if outside:
            warnings.warn(
                f"{who}: {outside} of {name}'s {len(own)} parameters are not the model's, so COT gives them no "
                "gradient and they do not train. Build the optimizer from model.parameters() (after wrapping the "
                "model), or add those tensors to the model as parameters.",
                UserWarning,
                stacklevel=3,
            )


def check_clipping(value: float | None, algorithm: str) -> None:
    if algorithm not in CLIP_ALGORITHMS:
        raise ValueError(f"gradient_clip_algorithm must be one of {CLIP_ALGORITHMS}; got {algorithm!r}")
    if value is not None and not value > 0:
        raise ValueError(f"gradient_clip_val must be > 0 (or None to disable clipping); got {value}")


def clip_gradients(params: Iterable[Tensor], value: float | None, algorithm: str) -> None:
    if value is None:
        return
    if algorithm == "norm":
        torch.nn.utils.clip_grad_norm_(params, value)
    else:
        torch.nn.utils.clip_grad_value_(params, value)


class DivergenceError(FloatingPointError):
    """Training diverged: a non-finite loss, or one beyond :class:`~complement.training.DivergenceGuard`'s bound."""


def check_finite_loss(phase: str, loss: Tensor) -> None:
    if not bool(torch.isfinite(loss)):
        raise DivergenceError(
            f"COT phase '{Phase(phase).value}' produced a non-finite loss ({loss.item()}). Check the inputs for "
            "NaN/inf, lower the learning rate, or enable gradient clipping; pass check_finite=False to skip this check."
        )


def split_batch(batch: Any, fix: str) -> tuple[Any, Tensor]:
    """The default batch format ``(inputs, target)``; ``fix`` tells how to use another one.

    A longer tuple (e.g. ``(inputs, target, sample_weight)``) is used for its first two
    elements, with a warning: the rest would otherwise be dropped without a word."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        kind = f"a dict with keys {sorted(batch)}" if isinstance(batch, dict) else type(batch).__name__
        length = f" of {len(batch)} element(s)" if isinstance(batch, (tuple, list)) else ""
        raise TypeError(f"the default batch format is (inputs, target); got {kind}{length}. {fix}")
    if len(batch) > 2:
        warnings.warn(
            f"the batch has {len(batch)} elements; COT's default (inputs, target) uses the first two and ignores the "
            f"rest (sample weights, ids, ...). {fix}",
            UserWarning,
            stacklevel=3,
        )
    return batch[0], batch[1]


class CotStepper:
    """The one COT step that every front end runs: phase 1 on each micro-batch as it arrives, then
    the CE step, then phase 2 replaying the group (``alternate``). Front ends supply how to get
    logits, how to back-propagate and how to step (see the module docstring)."""

    def __init__(
        self,
        objective: CotObjective,
        forward: Forward,
        backward: Callable[[Tensor], None],
        step: Callable[[Phase], None],
        check_finite: bool = True,
        loss_context: Callable[[], AbstractContextManager] = nullcontext,
        rescale: Callable[[float], None] | None = None,
        adversary: Adversary | None = None,
    ):
        if adversary is not None and adversary.config.kind == "trades" and objective.mode != "off":
            raise ValueError(
                f"TRADES is its own objective (CE + beta KL); train it with mode='off', not mode={objective.mode!r}. "
                "For COT with adversarial training, use AdversarialTraining(kind='pgd_at')."
            )
        self.adversary = adversary
        self._adversarial: dict[int, Any] = {}  # id(micro-batch) -> its adversarial batch, for phase 2
        self.objective = objective
        self.forward = forward
        self.backward = backward
        self.step = step
        self.check_finite = check_finite
        self.loss_context = loss_context  # e.g. the HF Trainer's autocast, around forward and loss
        self.rescale = rescale  # multiplies the accumulated gradients (a group that ended short)
        self._planned_size = 0
        self._logs: dict[str, Tensor] = {}

    def _run(self, phase: Phase, batch: Any, scale: float) -> Tensor:
        with self.loss_context():
            if self.adversary is None:
                logits, target = self.forward(batch, phase)
                part = self.objective.phase_loss(phase, logits, target)
            else:
                part = self._adversarial_loss(phase, batch)
        if self.check_finite:
            check_finite_loss(phase, part.loss)
        if not part.loss.requires_grad:
            raise RuntimeError(
                f"COT phase '{Phase(phase).value}': the loss does not depend on any trainable parameter (it has no "
                "grad_fn), so there is nothing to back-propagate. Check that the model's parameters require grad (a "
                "frozen model: requires_grad_(True) on what should train), that the forward does not run under "
                "torch.no_grad() or torch.inference_mode(), and that the logits are not detached."
            )
        loss = part.loss * scale if scale != 1.0 else part.loss
        self.backward(loss)
        for name, value in part.logs.items():  # no tensor op in the common case of one micro-batch
            value = value.float() if scale == 1.0 else value.float() * scale
            self._logs[name] = self._logs[name] + value if name in self._logs else value
        return loss.detach()

    def _logits(self, batch: Any, phase: Phase) -> tuple[Tensor, Tensor]:
        logits, target = self.forward(batch, phase)
        if not isinstance(logits, Tensor):
            raise TypeError(
                "adversarial training needs materialized logits; a linear head's LinearLogits is not supported"
            )
        return logits, target

    def _adversarial_loss(self, phase: Phase, batch: Any) -> PhaseLoss:
        """The phase's loss on adversarial inputs (``pgd_at``: made in phase 1, reused by phase 2),
        or TRADES' CE on the clean inputs plus beta times the KL to the adversarial ones."""
        assert self.adversary is not None
        kind = self.adversary.config.kind
        if kind == "trades":
            clean, target = self._logits(batch, phase)
            adversarial = self.adversary.attack(batch, lambda b: self._logits(b, phase)[0], target, clean)
            part = self.objective.phase_loss(phase, clean, target)
            kl = trades_kl(clean, self._logits(adversarial, phase)[0])
            total = part.loss + self.adversary.config.beta * kl
            return PhaseLoss(total, {**part.logs, "trades_kl": kl.detach(), "loss": total.detach()})
        adversarial = self._adversarial.get(id(batch)) if phase == Phase.COMPLEMENT else None
        if adversarial is None:
            target = _target_of(batch)
            adversarial = self.adversary.attack(batch, lambda b: self._logits(b, phase)[0], target, None)
            if Phase.COMPLEMENT in self.objective.phases:
                self._adversarial[id(batch)] = adversarial
        logits, target = self.forward(adversarial, phase)
        return self.objective.phase_loss(phase, logits, target)

    def first_phase(self, batch: Any, group_size: int) -> Tensor:
        """Phase 1 (or the only phase) for one micro-batch of a group of ``group_size``;
        returns its detached loss, scaled by ``1 / group_size``."""
        self._planned_size = group_size
        return self._run(Phase.CE, batch, 1.0 / group_size)

    def finish(self, batches: Sequence[Any], step_last: bool = True) -> dict[str, Tensor]:
        """Step phase 1, run and step phase 2 on ``batches``; return the group's mean losses.

        ``step_last=False`` leaves the group's last step (phase 2's, or phase 1's when it is
        the only phase) to the caller's loop. A group shorter than planned (a loader of
        unknown length ended inside it) has its phase-1 gradients and logs rescaled from
        ``1 / planned`` to ``1 / len(batches)`` first, so it steps on the mean like any group."""
        if self._planned_size and self._planned_size != len(batches):
            self._rescale_short_group(self._planned_size / len(batches))
        self._planned_size = 0
        phases = self.objective.phases
        if step_last or len(phases) > 1:
            self.step(Phase.CE)
        if Phase.COMPLEMENT in phases:
            for batch in batches:
                self._run(Phase.COMPLEMENT, batch, 1.0 / len(batches))
            if step_last:
                self.step(Phase.COMPLEMENT)
        logs, self._logs = self._logs, {}
        self._adversarial.clear()
        return logs

    def _rescale_short_group(self, factor: float) -> None:
        if self.rescale is None:
            raise RuntimeError("this front end cannot rescale a short accumulation group; pass the group's size")
        self.rescale(factor)
        self._logs = {name: value * factor for name, value in self._logs.items()}

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


def _target_of(batch: Any) -> Tensor:
    """The targets of an ``(inputs, target, ...)`` batch or a dict's ``labels``, for the attack."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[1]
    if isinstance(batch, dict) and "labels" in batch:
        return batch["labels"]
    raise TypeError("adversarial training needs the targets: batches (inputs, target, ...) or dicts with 'labels'")
