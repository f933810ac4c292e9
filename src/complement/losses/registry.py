"""Every loss by name, for configs and the command line.

``get_loss("complement_entropy", num_classes=10)`` builds a Module. Names have short
aliases (``cot``, ``gce``, ``cce``, ``ce``, ``ls``). Each entry says whether it is a
*complement objective* (used as COT's second step) or a *primary* loss (trained alone).
Cross-entropy and label smoothing are torch's own ``nn.CrossEntropyLoss``.

An entry may name its *chunked twin*: a Module with the same arguments whose
``forward(hidden, weight, target, bias=None)`` computes the loss of the output layer's
logits without materializing them (:mod:`complement.losses.linear`).
``get_chunked_loss(name, **kwargs)`` builds it; the training engine asks for it when a
model returns :class:`~complement.training.LinearLogits`, so it names no loss itself.

A complement loss may also offer ``with_cross_entropy(input, target) -> (ce, loss)``:
cross-entropy and itself from one read of the logits, which COT's joint mode uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .._validation import check_number
from .comp_sum import CompSumLoss
from .complement_cross_entropy import ComplementCrossEntropy
from .complement_entropy import ComplementEntropy
from .focal import FocalLoss
from .generalized_cross_entropy import GeneralizedCrossEntropy
from .guided_complement_entropy import GuidedComplementEntropy
from .linear import LinearComplementEntropy, LinearCrossEntropy, LinearGuidedComplementEntropy
from .mae import MeanAbsoluteError


class LabelSmoothingCrossEntropy(nn.CrossEntropyLoss):
    """``nn.CrossEntropyLoss`` with label smoothing (0.1 by default), which its repr shows."""

    def __init__(self, smoothing: float = 0.1, **kwargs):
        check_number("smoothing", smoothing, minimum=0.0)
        if smoothing > 1:
            raise ValueError(f"smoothing must be in [0, 1]; got {smoothing}")
        super().__init__(label_smoothing=smoothing, **kwargs)

    def extra_repr(self) -> str:
        return f"smoothing={self.label_smoothing}, reduction={self.reduction!r}"


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its Module ``factory``, whether it is a complement objective (usable as
    COT's phase 2) and a one-line ``summary``."""

    factory: Callable[..., nn.Module]
    complement_objective: bool
    summary: str
    chunked: Callable[..., nn.Module] | None = None  # same arguments; forward(hidden, weight, target, bias)


LOSSES: dict[str, LossSpec] = {
    "complement_entropy": LossSpec(
        ComplementEntropy, True, "COT's complement entropy (Chen et al., ICLR 2019)", LinearComplementEntropy
    ),
    "guided_complement_entropy": LossSpec(
        GuidedComplementEntropy,
        True,
        "guided complement entropy (Chen et al., ICCV 2019)",
        LinearGuidedComplementEntropy,
    ),
    "complement_cross_entropy": LossSpec(ComplementCrossEntropy, False, "CE - H/(K-1) (Kim et al., 2021)"),
    "cross_entropy": LossSpec(nn.CrossEntropyLoss, False, "torch cross-entropy", LinearCrossEntropy),
    "label_smoothing": LossSpec(LabelSmoothingCrossEntropy, False, "cross-entropy with label smoothing 0.1"),
    "focal": LossSpec(FocalLoss, False, "focal loss, gamma 2 (Lin et al., 2017)"),
    "generalized_cross_entropy": LossSpec(
        GeneralizedCrossEntropy, False, "generalized cross-entropy (1 - p_g^q) / q, q 0.7 (Zhang & Sabuncu, 2018)"
    ),
    "mean_absolute_error": LossSpec(MeanAbsoluteError, False, "MAE on probabilities, 2 (1 - p_g) (Ghosh et al., 2017)"),
    "comp_sum": LossSpec(CompSumLoss, False, "comp-sum Phi^tau(1 / p_g), tau 1 (= CE) unless given (Mao et al., 2023)"),
}

ALIASES = {
    "cot": "complement_entropy",
    "gce": "guided_complement_entropy",
    "cce": "complement_cross_entropy",
    "ce": "cross_entropy",
    "ls": "label_smoothing",
    "gen_ce": "generalized_cross_entropy",
    "mae": "mean_absolute_error",
}


def canonical_name(name: str) -> str:
    """The registered name of ``name`` (aliases resolved); an unknown name is an error listing them."""
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        names = sorted(set(LOSSES) | set(ALIASES))
        raise ValueError(f"unknown loss {name!r}; choose one of {names}")
    return key


def get_loss(name: str, **kwargs) -> nn.Module:
    """Build the loss registered under ``name`` (or an alias) with ``kwargs``."""
    spec = LOSSES[canonical_name(name)]
    try:
        return spec.factory(**kwargs)
    except TypeError as error:
        raise TypeError(f"loss {name!r} does not accept these arguments {sorted(kwargs)}: {error}") from None


def get_chunked_loss(name: str, **kwargs) -> nn.Module:
    """Build the chunked twin of the loss registered under ``name``, with ``kwargs``."""
    key = canonical_name(name)
    spec = LOSSES[key]
    if spec.chunked is None:
        have = sorted(n for n, s in LOSSES.items() if s.chunked is not None)
        raise ValueError(
            f"loss {name!r} has no chunked twin for LinearLogits (unmaterialized logits); those that have one: "
            f"{have}. Return materialized logits to train with {name!r}."
        )
    try:
        return spec.chunked(**kwargs)
    except TypeError as error:
        raise TypeError(
            f"the chunked twin of loss {name!r} ({spec.chunked.__name__}) does not accept these arguments "
            f"{sorted(kwargs)}: {error}. Return materialized logits to use them."
        ) from None


def is_complement_objective(name: str) -> bool:
    """Whether the loss ``name`` is a complement objective (COT's phase-2 loss)."""
    return LOSSES[canonical_name(name)].complement_objective


def available_losses() -> dict[str, str]:
    """Every registered loss name and its one-line summary."""
    return {name: spec.summary for name, spec in LOSSES.items()}
