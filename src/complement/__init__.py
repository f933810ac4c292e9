"""complement: Complement Objective Training (COT) and the complement-loss family.

Losses (functional form and Module twin, ``torch.nn.functional`` conventions)::

    import complement
    loss = complement.complement_entropy(logits, target)        # COT's second objective
    loss = complement.ComplementEntropy(num_classes)(logits, target)

Training front ends live in :mod:`complement.training` (plain PyTorch),
:mod:`complement.lightning` and :mod:`complement.hf`.
"""

from .losses import (
    NORMALIZATIONS,
    ComplementCrossEntropy,
    ComplementEntropy,
    CompSumLoss,
    FocalLoss,
    GeneralizedCrossEntropy,
    GuidedComplementEntropy,
    MeanAbsoluteError,
    available_losses,
    comp_sum_loss,
    complement_cross_entropy,
    complement_entropy,
    cross_entropy_and_complement_entropy,
    focal_loss,
    generalized_cross_entropy,
    get_chunked_loss,
    get_loss,
    guided_complement_entropy,
    linear_complement_entropy,
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
    linear_guided_complement_entropy,
    mean_absolute_error,
)

__version__ = "0.1.0"

__all__ = [
    "NORMALIZATIONS",
    "CompSumLoss",
    "ComplementCrossEntropy",
    "ComplementEntropy",
    "FocalLoss",
    "GeneralizedCrossEntropy",
    "GuidedComplementEntropy",
    "MeanAbsoluteError",
    "available_losses",
    "comp_sum_loss",
    "complement_cross_entropy",
    "complement_entropy",
    "cross_entropy_and_complement_entropy",
    "focal_loss",
    "generalized_cross_entropy",
    "get_chunked_loss",
    "get_loss",
    "guided_complement_entropy",
    "linear_complement_entropy",
    "linear_cross_entropy",
    "linear_cross_entropy_and_complement",
    "linear_guided_complement_entropy",
    "mean_absolute_error",
]
