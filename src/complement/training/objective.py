"""What COT minimizes in each phase of a training step.

Modes (Chen et al., ICLR 2019, and ``../docs`` for the comparison):

- ``alternate`` (the authors' algorithm): phase 1 minimizes cross-entropy and steps;
  phase 2 does a fresh forward and minimizes ``complement_weight * complement_loss``.
- ``joint``: one phase on ``CE + complement_weight * complement_loss`` (the authors
  found it consistently worse; it is here for comparison). With the default complement
  entropy it uses the one-pass CE+complement op.
- ``off``: only the primary loss (cross-entropy by default), so the same code trains
  the baselines: CE, or any registered loss trained alone (GCE, complement-CE, focal, ...).

The primary loss (phase 1) is cross-entropy unless ``primary_loss`` names another.

Logits may have the class dimension last, ``(..., C)``, with targets ``(...)``; they
are flattened to ``(M, C)`` rows (no copy for contiguous logits).

Large vocabularies: return :class:`LinearLogits` ``(hidden, weight, bias)`` instead of
logits and every phase runs the chunked "linear + loss" op of
:mod:`complement.ops.chunked_linear` (Triton on CUDA), never forming the N x V logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import cross_entropy_and_complement_entropy, get_loss, is_complement_objective
from ..losses.registry import canonical_name

MODES = ("alternate", "joint", "off")
LossFn = Callable[[Tensor, Tensor], Tensor]


class LinearLogits(NamedTuple):
    """Logits ``hidden @ weight.T + bias`` left unmaterialized for the chunked losses.

    ``hidden`` is ``(..., H)`` (class-last like logits), ``weight`` ``(V, H)``, ``bias`` ``(V,)`` or None."""

    hidden: Tensor
    weight: Tensor
    bias: Tensor | None = None


def flatten_class_last(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(..., C)`` logits and ``(...)`` targets to ``(M, C)`` and ``(M,)``."""
    if logits.dim() < 1 or tuple(logits.shape[:-1]) != tuple(target.shape):
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} and target of shape {tuple(target.shape)} do not fit: "
            "COT training expects class-last logits (..., C) with targets (...), e.g. (N, C) and (N,) or "
            "(N, L, C) and (N, L). Return logits in that layout from logits_and_target()."
        )
    return logits.reshape(-1, logits.shape[-1]), target.reshape(-1)


@dataclass
class PhaseLoss:
    """A loss to back-propagate and the detached parts to log."""

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


class CotObjective:
    """Builds each phase's loss from ``(logits, target)``.

    Args:
        mode: ``"alternate"``, ``"joint"`` or ``"off"``.
        complement_loss: a registered name (``"complement_entropy"``, ``"guided_complement_entropy"``)
            or a callable ``(logits (M, C), target (M,)) -> scalar``.
        complement_weight: multiplies the complement loss (both modes).
        ignore_index: target value that does not count.
        complement_loss_kwargs: keyword arguments for a named complement loss.
        primary_loss: phase 1's loss: ``"cross_entropy"`` (default), any registered name, or a callable.
        primary_loss_kwargs: keyword arguments for a named primary loss.
    """

    def __init__(
        self,
        mode: str = "alternate",
        complement_loss: str | LossFn = "complement_entropy",
        complement_weight: float = 1.0,
        ignore_index: int = -100,
        complement_loss_kwargs: dict | None = None,
        primary_loss: str | LossFn = "cross_entropy",
        primary_loss_kwargs: dict | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown COT mode {mode!r}; choose one of {MODES} ('off' trains plain cross-entropy)")
        if not complement_weight >= 0:
            raise ValueError(f"complement_weight must be >= 0; got {complement_weight}")
        kwargs = dict(complement_loss_kwargs or {})
        self.mode = mode
        self.complement_weight = float(complement_weight)
        self.ignore_index = ignore_index
        self._one_pass = False
        if callable(complement_loss) and not isinstance(complement_loss, str):
            if kwargs:
                raise ValueError("complement_loss_kwargs apply to a named complement loss, not to a callable")
            self.complement_fn: LossFn = complement_loss
            self.complement_name = getattr(complement_loss, "__name__", type(complement_loss).__name__)
        else:
            name = canonical_name(complement_loss)
            if not is_complement_objective(name):
                raise ValueError(
                    f"{complement_loss!r} is not a complement objective for COT's second step; use "
                    "'complement_entropy' or 'guided_complement_entropy', or train it alone with mode='off' "
                    "and it as the primary loss"
                )
            module: nn.Module = get_loss(name, ignore_index=ignore_index, **kwargs)
            self.complement_fn = module
            self.complement_name = name
            self._one_pass = name == "complement_entropy"
            self._normalization = getattr(module, "normalization", "classes")
        self.primary_fn, self.primary_name = self._primary(primary_loss, dict(primary_loss_kwargs or {}))
        if self.primary_name != "cross_entropy":
            self._one_pass = False  # the one-pass op computes CE, not another primary loss

    def _primary(self, loss: str | LossFn, kwargs: dict) -> tuple[LossFn, str]:
        if callable(loss) and not isinstance(loss, str):
            return loss, getattr(loss, "__name__", type(loss).__name__)
        name = canonical_name(loss)
        if name == "cross_entropy" and not kwargs:
            return self.cross_entropy, name
        return get_loss(name, ignore_index=self.ignore_index, **kwargs), name

    @property
    def phases(self) -> tuple[str, ...]:
        return ("ce", "complement") if self.mode == "alternate" else ("ce",)

    def cross_entropy(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index)

    def phase_loss(self, phase: str, logits: Tensor | LinearLogits, target: Tensor) -> PhaseLoss:
        if isinstance(logits, LinearLogits):
            return self._fused_phase_loss(phase, logits, target)
        logits, target = flatten_class_last(logits, target)
        if phase == "complement":
            complement = self.complement_fn(logits, target)
            return PhaseLoss(self.complement_weight * complement, {"cot_loss": complement.detach()})
        if self.mode != "joint":  # alternate's phase 1, or a baseline trained alone
            primary = self.primary_fn(logits, target)
            return PhaseLoss(primary, {"train_loss": primary.detach()})
        if self._one_pass:
            ce, complement = cross_entropy_and_complement_entropy(
                logits, target, ignore_index=self.ignore_index, normalization=self._normalization
            )
        else:
            ce, complement = self.primary_fn(logits, target), self.complement_fn(logits, target)
        total = ce.add(complement, alpha=self.complement_weight)  # one autograd node
        return PhaseLoss(total, {"train_loss": ce.detach(), "cot_loss": complement.detach(), "loss": total.detach()})

    def _fused_phase_loss(self, phase: str, head: LinearLogits, target: Tensor) -> PhaseLoss:
        """The same phases on ``LinearLogits`` through the chunked ops (exact, never N x V)."""
        from ..ops import chunked_linear as fused

        if self.primary_name != "cross_entropy" or self.complement_name not in (
            "complement_entropy",
            "guided_complement_entropy",
        ):
            raise ValueError(
                "the chunked LinearLogits path supports cross-entropy with complement_entropy or "
                f"guided_complement_entropy; got primary {self.primary_name!r} and complement "
                f"{self.complement_name!r}. "
                "Return materialized logits for other losses."
            )
        hidden, target = flatten_class_last(head.hidden, target)
        args = (hidden, head.weight, target)
        common = {"bias": head.bias, "ignore_index": self.ignore_index}
        guided = self.complement_name == "guided_complement_entropy"
        normalization = self.complement_fn.normalization
        if phase == "complement":
            if guided:
                complement = fused.linear_guided_complement_entropy(
                    *args, alpha=self.complement_fn.alpha, normalization=normalization, **common
                )
            else:
                complement = fused.linear_complement_entropy(*args, normalization=normalization, **common)
            return PhaseLoss(self.complement_weight * complement, {"cot_loss": complement.detach()})
        if self.mode != "joint":
            ce = fused.linear_cross_entropy(*args, **common)
            return PhaseLoss(ce, {"train_loss": ce.detach()})
        extra = {"complement": "guided", "alpha": self.complement_fn.alpha} if guided else {}
        ce, complement = fused.linear_cross_entropy_and_complement(
            *args, normalization=normalization, **common, **extra
        )
        total = ce.add(complement, alpha=self.complement_weight)  # one autograd node
        return PhaseLoss(total, {"train_loss": ce.detach(), "cot_loss": complement.detach(), "loss": total.detach()})
