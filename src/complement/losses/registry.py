"""Every loss by name, for configs and the command line.

``get_loss("complement_entropy", num_classes=10)`` builds a Module. Names have short
aliases (``cot``, ``gce``, ``cce``, ``ce``, ``ls``). Each entry says whether it is a
*complement objective* (used as COT's second step) or a *primary* loss (trained alone).
Cross-entropy and label smoothing are torch's own ``nn.CrossEntropyLoss``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .complement_cross_entropy import ComplementCrossEntropy
from .complement_entropy import ComplementEntropy
from .focal import FocalLoss
from .guided_complement_entropy import GuidedComplementEntropy


def _label_smoothing(smoothing: float = 0.1, ignore_index: int = -100, reduction: str = "mean", **kwargs) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=smoothing, ignore_index=ignore_index, reduction=reduction, **kwargs)


@dataclass(frozen=True)
class LossSpec:
    factory: Callable[..., nn.Module]
    complement_objective: bool
    summary: str


LOSSES: dict[str, LossSpec] = {
    "complement_entropy": LossSpec(ComplementEntropy, True, "COT's complement entropy (Chen et al., ICLR 2019)"),
    "guided_complement_entropy": LossSpec(
        GuidedComplementEntropy, True, "guided complement entropy (Chen et al., ICCV 2019)"
    ),
    "complement_cross_entropy": LossSpec(ComplementCrossEntropy, False, "CE - H/(K-1) (Kim et al., 2021)"),
    "cross_entropy": LossSpec(nn.CrossEntropyLoss, False, "torch cross-entropy"),
    "label_smoothing": LossSpec(_label_smoothing, False, "cross-entropy with label smoothing 0.1"),
    "focal": LossSpec(FocalLoss, False, "focal loss, gamma 2 (Lin et al., 2017)"),
}

ALIASES = {
    "cot": "complement_entropy",
    "gce": "guided_complement_entropy",
    "cce": "complement_cross_entropy",
    "ce": "cross_entropy",
    "ls": "label_smoothing",
}


def canonical_name(name: str) -> str:
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


def is_complement_objective(name: str) -> bool:
    return LOSSES[canonical_name(name)].complement_objective


def available_losses() -> dict[str, str]:
    return {name: spec.summary for name, spec in LOSSES.items()}
