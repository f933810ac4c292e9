"""The loss layer: the complement-loss family and its baselines, each as a function and a
Module, their chunked large-vocabulary twins (:mod:`.linear`), and the registry by name."""

from .comp_sum import CompSumLoss, comp_sum_loss
from .complement_cross_entropy import ComplementCrossEntropy, complement_cross_entropy
from .complement_entropy import NORMALIZATIONS, ComplementEntropy, complement_entropy
from .focal import FocalLoss, focal_loss
from .generalized_cross_entropy import GeneralizedCrossEntropy, generalized_cross_entropy
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
from .mae import MeanAbsoluteError, mean_absolute_error
from .registry import available_losses, canonical_name, get_chunked_loss, get_loss, is_complement_objective

__all__ = [
    "NORMALIZATIONS",
    "CompSumLoss",
    "ComplementCrossEntropy",
    "ComplementEntropy",
    "FocalLoss",
    "GeneralizedCrossEntropy",
    "GuidedComplementEntropy",
    "LinearComplementEntropy",
    "LinearCrossEntropy",
    "LinearGuidedComplementEntropy",
    "MeanAbsoluteError",
    "available_losses",
    "canonical_name",
    "comp_sum_loss",
    "complement_cross_entropy",
    "complement_entropy",
    "cross_entropy_and_complement_entropy",
    "focal_loss",
    "generalized_cross_entropy",
    "get_chunked_loss",
    "get_loss",
    "guided_complement_entropy",
    "is_complement_objective",
    "linear_complement_entropy",
    "linear_cross_entropy",
    "linear_cross_entropy_and_complement",
    "linear_guided_complement_entropy",
    "mean_absolute_error",
]
