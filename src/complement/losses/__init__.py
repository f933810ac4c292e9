"""The loss layer: the complement-loss family and its baselines, each as a function and a
Module, their chunked large-vocabulary twins (:mod:`.linear`), and the registry by name."""

from .complement_cross_entropy import ComplementCrossEntropy, complement_cross_entropy
from .complement_entropy import NORMALIZATIONS, ComplementEntropy, complement_entropy
from .focal import FocalLoss, focal_loss
from .guided_complement_entropy import GuidedComplementEntropy, guided_complement_entropy
from .joint import cross_entropy_and_complement_entropy
from .linear import (
    LinearComplementEntropy,
    LinearCrossEntropy,
    LinearGuidedComplementEntropy,
    linear_complement_entropy,
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
    linear_guided_complement_entropy,
)
from .registry import available_losses, canonical_name, get_chunked_loss, get_loss, is_complement_objective

__all__ = [
    "NORMALIZATIONS",
    "ComplementCrossEntropy",
    "ComplementEntropy",
    "FocalLoss",
    "GuidedComplementEntropy",
    "LinearComplementEntropy",
    "LinearCrossEntropy",
    "LinearGuidedComplementEntropy",
    "available_losses",
    "canonical_name",
    "complement_cross_entropy",
    "complement_entropy",
    "cross_entropy_and_complement_entropy",
    "focal_loss",
    "get_chunked_loss",
    "get_loss",
    "guided_complement_entropy",
    "is_complement_objective",
    "linear_complement_entropy",
    "linear_cross_entropy",
    "linear_cross_entropy_and_complement",
    "linear_guided_complement_entropy",
]
