"""Multi-class focal loss, a baseline for the comparisons.

Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (https://arxiv.org/abs/1708.02002)::

    FL = -(1 - p_g)^gamma * log p_g

with ``gamma = 2`` in the paper; ``gamma = 0`` is cross-entropy. ``weight`` (per class)
plays the role of the paper's ``alpha`` and, as in ``F.cross_entropy``, the mean is
taken over the weights of the kept targets. torch ships only the binary
``sigmoid_focal_loss`` (torchvision), so the multi-class form is written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_gamma, check_num_classes, check_reduction, check_targets, flatten_logits, split_ignored
from ..ops.complement_entropy import upcast


def focal_loss(
    input: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """``-(1 - p_g)^gamma * log p_g`` with ``F.cross_entropy``'s conventions."""
    check_gamma(gamma)
    check_reduction(reduction)
    logits, flat_target, target_shape = flatten_logits(input, target, "focal_loss")
    num_classes = logits.shape[1]
    check_num_classes(num_classes, "focal_loss")
    check_targets(flat_target, num_classes, ignore_index, "focal_loss")
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(f"focal_loss: weight must have shape ({num_classes},); got {tuple(weight.shape)}")
    kept, safe_target = split_ignored(flat_target, ignore_index)
    assert kept is not None  # split_ignored always masks unless told nothing can be ignored
    log_p = F.log_softmax(upcast(logits), dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    per_row = -((1 - log_p.exp()).clamp(min=0) ** gamma) * log_p
    row_weight = kept.to(per_row.dtype)
    if weight is not None:
        row_weight = row_weight * weight.to(per_row.dtype)[safe_target]
    per_row = torch.where(kept, per_row * row_weight, torch.zeros_like(per_row))
    if reduction == "none":
        return per_row.reshape(target_shape)
    if reduction == "sum":
        return per_row.sum()
    return per_row.sum() / row_weight.sum().clamp(min=torch.finfo(per_row.dtype).tiny)


class FocalLoss(nn.Module):
    """Module twin of :func:`focal_loss`."""

    def __init__(
        self, gamma: float = 2.0, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"
    ):
        super().__init__()
        check_gamma(gamma)
        check_reduction(reduction)
        self.gamma = gamma
        self.weight: Tensor | None
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return focal_loss(input, target, self.gamma, self.weight, self.ignore_index, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"
