"""Complement Cross-Entropy (CCE) for imbalanced classification.

Kim, Lee and Jeon, "Imbalanced Image Classification with Complement Cross Entropy",
Pattern Recognition Letters 2021 (https://arxiv.org/abs/2009.02189).

One loss, one step: cross-entropy plus a complement term normalized by ``K - 1``::

    L = CE - balancing_factor * H(q) / (K - 1)

**Sign convention.** Public implementations disagree on the sign of the complement
term (the authors' repository flipped it between commits). Here the term always
*raises* the complement entropy, as the paper intends: ``balancing_factor >= 0``
(default 1, the paper's setting), and a negative value is refused because it would
sharpen the wrong-class distribution. ``balancing_factor=1`` matches Holocron's
``complement_cross_entropy`` with ``gamma=-1``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import (
    check_balancing_factor,
    check_class_count,
    check_reduction,
    normalizer,
    prepare,
    reduce_rows,
    reduction_factor,
)
from ..ops.joint import cross_entropy_and_complement_entropy_rows


def complement_cross_entropy(
    input: Tensor,
    target: Tensor,
    balancing_factor: float = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """``CE - balancing_factor * H(q) / (K - 1)`` from one pass over the logits.

    With a flat complement, ``H = log(K - 1)``, so the loss is ``CE - log(3) / 3``:

    >>> import torch
    >>> from complement import complement_cross_entropy
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> complement_cross_entropy(logits, target)
    tensor(0.3775)
    >>> torch.nn.functional.cross_entropy(logits, target) - torch.log(torch.tensor(3.0)) / 3
    tensor(0.3775)
    """
    check_balancing_factor(balancing_factor)
    logits, safe_target, kept, target_shape = prepare(
        input, target, ignore_index, reduction, "complement_cross_entropy"
    )
    weight = -balancing_factor / normalizer("complement_classes", logits.shape[1])
    factor = reduction_factor(kept, reduction, logits.shape[0])
    if factor is not None:  # the op scales and reduces
        ce, complement = cross_entropy_and_complement_entropy_rows(
            logits, safe_target, factor, weight * factor, reduce=True
        )
        return ce + complement
    ce_rows, complement_rows = cross_entropy_and_complement_entropy_rows(logits, safe_target, 1.0, weight)
    return reduce_rows(ce_rows + complement_rows, kept, reduction, target_shape)


class ComplementCrossEntropy(nn.Module):
    """Module twin of :func:`complement_cross_entropy`."""

    def __init__(
        self,
        balancing_factor: float = 1.0,
        num_classes: int | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ):
        super().__init__()
        check_balancing_factor(balancing_factor)
        check_reduction(reduction)
        self.balancing_factor = balancing_factor
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_class_count(self.num_classes, input, type(self).__name__)
        return complement_cross_entropy(input, target, self.balancing_factor, self.ignore_index, self.reduction)

    def extra_repr(self) -> str:
        return f"balancing_factor={self.balancing_factor}, reduction={self.reduction!r}"
