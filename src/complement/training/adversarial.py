"""Adversarial training inside the one COT step: the inner maximization before each phase's loss.

Two objectives, each an L∞ PGD inner maximization in pixel space (:mod:`complement.robustness`):

- ``pgd_at`` (Madry et al., ICLR 2018): ``min E[ max_{‖δ‖∞ ≤ ε} L(f(x + δ), y) ]``. The batch's
  inputs are replaced by PGD's adversarial examples (cross-entropy ascent, random start) and
  the step's losses are computed on them: CE for a baseline, and with COT both phases, the
  complement phase on the same adversarial examples (made once per micro-batch, against the
  model before the CE step), as the GCE paper trains its loss on PGD examples.
- ``trades`` (Zhang et al., ICML 2019): ``CE(f(x), y) + β · KL(f(x) ‖ f(x'))`` where ``x'``
  maximizes the same KL in the ball, from ``x + 0.001 · N(0, 1)`` (the authors' code,
  ``yaodongyu/TRADES``, ``trades.py``: the KL is ``KLDivLoss(log_softmax(f(x')), softmax(f(x)))``
  summed and divided by the batch size). β = 6 is the paper's CIFAR-10 value.

The attack runs with the model in eval mode (as TRADES' code does: no dropout noise and no
batch-norm statistics from adversarial inputs), then the mode is put back. Only the inputs
get gradients during the attack. Inputs must be pixels in ``[0, 1]``, or normalized ones
with the ``mean``/``std`` that map them back: the attack then runs on the pixels and the
batch gets the normalized adversarial inputs.

Batches: ``(inputs, target, ...)`` tuples, or dicts holding ``pixel_values`` (Hugging Face
vision models). Token ids have no pixel space: such batches are refused.

Cost: each attack step is one forward and one backward pass, so a ``pgd_at`` step with 10
attack steps costs about 11 CE steps, and TRADES' about 12 (the KL term's pass on the
adversarial inputs); with COT the attack runs once per micro-batch, for both phases
(``passes_per_batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..robustness.attacks import pgd
from ..robustness.threat import check_eps, check_steps

KINDS = ("pgd_at", "trades")


def _upcast(x: Tensor) -> Tensor:
    # the losses' rule (float16/bfloat16 in float32); training reaches ops only through the loss API
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@dataclass(frozen=True)
class AdversarialTraining:
    """The inner maximization of adversarial training (see the module docstring).

    Args:
        kind: ``"pgd_at"`` or ``"trades"``.
        eps: the L∞ radius in pixels of ``[0, 1]`` images (0.3 MNIST, 8/255 CIFAR-10).
        steps: PGD steps (Madry: 40 on MNIST, 10 on CIFAR-10).
        step_size: PGD's step (default ``2.5 eps / steps``; Madry's MNIST 0.01, CIFAR-10 2/255).
        beta: TRADES' weight of the KL term.
        mean, std: per-channel normalization of the batch's inputs, when they are normalized.
    """

    kind: str = "pgd_at"
    eps: float = 0.3
    steps: int = 10
    step_size: float | None = None
    beta: float = 6.0
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown adversarial training {self.kind!r}; choose from {KINDS}")
        check_eps(self.eps)
        check_steps(self.steps)
        if self.step_size is not None and not (isinstance(self.step_size, (int, float)) and self.step_size > 0):
            raise ValueError(f"step_size must be a number > 0 (or None: 2.5 eps / steps); got {self.step_size!r}")
        if not (isinstance(self.beta, (int, float)) and self.beta >= 0 and self.beta == self.beta):
            raise ValueError(
                f"beta must be a number >= 0 (TRADES' weight of the KL term, 6 in the paper); got {self.beta!r}"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together (the normalization of the batch's inputs), or neither")

    @property
    def passes_per_batch(self) -> int:
        """Forward and backward passes adversarial training adds to each micro-batch's step (for
        equal-compute accounting): the attack's steps, plus for TRADES the pass on the adversarial inputs."""
        return self.steps + (1 if self.kind == "trades" else 0)


def _inputs(batch: Any) -> Tensor:
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        return batch[0]
    if isinstance(batch, dict) and isinstance(batch.get("pixel_values"), Tensor):
        return batch["pixel_values"]
    raise TypeError(
        "adversarial training perturbs image inputs: batches must be (inputs, target, ...) with a float tensor of "
        f"images first, or dicts with 'pixel_values'; got {type(batch).__name__}. Token ids have no pixel space."
    )


def with_inputs(batch: Any, inputs: Tensor) -> Any:
    """``batch`` with its image inputs replaced."""
    if isinstance(batch, dict):
        return {**batch, "pixel_values": inputs}
    return type(batch)((inputs, *batch[1:])) if isinstance(batch, tuple) else [inputs, *batch[1:]]


class Adversary:
    """Runs :class:`AdversarialTraining`'s attack for the COT step (used by :class:`~.stepper.CotStepper`)."""

    def __init__(self, config: AdversarialTraining, model: nn.Module | None):
        self.config = config
        self.model = model  # whose mode the attack switches to eval (a front end may set it later)

    def _scale(self, like: Tensor) -> tuple[Tensor, Tensor] | None:
        if self.config.mean is None:
            return None
        assert self.config.std is not None
        shape = (1, len(self.config.mean)) + (1,) * (like.dim() - 2)
        mean = torch.tensor(list(self.config.mean), dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(list(self.config.std), dtype=like.dtype, device=like.device).view(shape)
        return mean, std

    def attack(self, batch: Any, logits_of: Callable[[Any], Tensor], target: Tensor, clean: Tensor | None) -> Any:
        """``batch`` with adversarial inputs: PGD on CE (``pgd_at``) or on the KL to ``clean`` logits (``trades``)."""
        inputs = _inputs(batch)
        if not inputs.is_floating_point():
            raise TypeError(f"adversarial training perturbs float image inputs; got {inputs.dtype} (token ids?)")
        scale = self._scale(inputs)
        pixels = inputs.detach() if scale is None else (inputs.detach() * scale[1] + scale[0]).clamp(0, 1)

        def normalized(x: Tensor) -> Tensor:
            return x if scale is None else (x - scale[0]) / scale[1]

        def logits(x: Tensor) -> Tensor:
            return logits_of(with_inputs(batch, normalized(x)))

        c = self.config
        if c.kind == "trades":
            assert clean is not None
            reference = _upcast(clean.detach()).softmax(-1)

            def kl(adversarial_logits: Tensor, _: Tensor) -> Tensor:
                log_q = _upcast(adversarial_logits).log_softmax(-1)
                return F.kl_div(log_q, reference, reduction="none").sum(-1)

            start: Tensor | None = (pixels + 0.001 * torch.randn_like(pixels)).clamp(0, 1)
            loss: Any = kl
        else:
            start, loss = None, "ce"
        assert self.model is not None, "the front end sets the model before the first step"
        was_training = self.model.training
        self.model.eval()
        try:
            adversarial = pgd(logits, pixels, target, c.eps, steps=c.steps, step_size=c.step_size,
                              random_start=c.kind == "pgd_at", loss=loss, start=start)  # fmt: skip
        finally:
            self.model.train(was_training)
        return with_inputs(batch, normalized(adversarial).detach())


def trades_kl(clean: Tensor, adversarial: Tensor) -> Tensor:
    """TRADES' robustness term: ``KL(f(x) ‖ f(x'))`` summed over classes, mean over the batch."""
    return F.kl_div(_upcast(adversarial).log_softmax(-1), _upcast(clean).softmax(-1), reduction="batchmean")
