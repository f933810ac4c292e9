"""Multi-class focal loss, a baseline for the comparisons.

Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (https://arxiv.org/abs/1708.02002)::

    FL = -(1 - p_g)^gamma * log p_g

with ``gamma = 2`` in the paper; ``gamma = 0`` is cross-entropy. ``weight`` (per class)
plays the role of the paper's ``alpha`` and, as in ``F.cross_entropy``, the mean is
taken over the weights of the kept targets. torch ships only the binary
``sigmoid_focal_loss`` (torchvision), so the multi-class form is written here.
"""

from __future__ import annotations

from torch import Tensor

from ._comp_sum import TargetProbabilityModule, target_probability_loss
from ._rules import check_gamma


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

    def row_loss(log_p: Tensor) -> Tensor:
        return -((1 - log_p.exp()).clamp(min=0) ** gamma) * log_p

    return target_probability_loss(
        input, target, weight, row_loss, ignore_index=ignore_index, reduction=reduction, validate=validate,
        loss_name="focal_loss",
    )  # fmt: skip


class FocalLoss(TargetProbabilityModule):
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
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction, validate=validate)
        check_gamma(gamma)
        self.gamma = gamma

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return focal_loss(input, target, self.weight, gamma=self.gamma, **self._options())

    def extra_repr(self) -> str:
        return self._repr(f"gamma={self.gamma}")
