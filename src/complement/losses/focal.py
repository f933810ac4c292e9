"""Multi-class focal loss, a baseline for the comparisons.

Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (https://arxiv.org/abs/1708.02002)::

    FL = -(1 - p_g)^gamma * log p_g

with ``gamma = 2`` in the paper; ``gamma = 0`` is cross-entropy. ``weight`` (per class)
plays the role of the paper's ``alpha`` and, as in ``F.cross_entropy``, the mean is
taken over the weights of the kept targets. torch ships only the binary
``sigmoid_focal_loss`` (torchvision), so the multi-class form is written here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import (
    check_class_weight,
    check_gamma,
    check_ignore_index,
    check_reduction,
    prepare,
    reduce_rows,
    reduce_weighted_rows,
)
from ..ops.complement_entropy import upcast


def focal_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """``-(1 - p_g)^gamma * log p_g`` with ``F.cross_entropy``'s conventions (``weight`` third, as there).

    >>> import torch
    >>> from complement import focal_loss
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> focal_loss(logits, target, gamma=0.0)  # gamma = 0 is cross-entropy
    tensor(0.7437)
    """
    check_gamma(gamma)
    logits, safe_target, kept, target_shape = prepare(input, target, ignore_index, reduction, "focal_loss", validate)
    check_class_weight(weight, logits.shape[1], "focal_loss")
    log_p = F.log_softmax(upcast(logits), dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    per_row = -((1 - log_p.exp()).clamp(min=0) ** gamma) * log_p
    if weight is not None:
        return reduce_weighted_rows(per_row, safe_target, weight, kept, reduction, target_shape)
    return reduce_rows(per_row, kept, reduction, target_shape)


class FocalLoss(nn.Module):
    """Module twin of :func:`focal_loss`."""

    def __init__(
        self,
        gamma: float = 2.0,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        validate: bool = True,
    ):
        super().__init__()
        check_gamma(gamma)
        check_ignore_index(ignore_index)
        check_reduction(reduction)
        if weight is not None:
            check_class_weight(weight, weight.shape[0] if isinstance(weight, Tensor) else 0, "FocalLoss")
        self.gamma = gamma
        self.weight: Tensor | None
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.validate = validate

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return focal_loss(
            input, target, self.weight, gamma=self.gamma, ignore_index=self.ignore_index, reduction=self.reduction,
            validate=self.validate,
        )  # fmt: skip

    def extra_repr(self) -> str:
        weighted = ", weighted" if self.weight is not None else ""
        return f"gamma={self.gamma}, reduction={self.reduction!r}{weighted}"
