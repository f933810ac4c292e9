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

``weight`` (per class, as in ``F.cross_entropy``) weights each row's whole loss, both
terms, by its target class's weight, and ``mean`` divides by the summed weights, so the
cross-entropy term equals ``F.cross_entropy(..., weight=weight)``. (Holocron instead
weights the complement term by each wrong class's weight.)
"""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import check_ignore_index
from ..ops.joint import cross_entropy_and_complement_entropy_rows
from ._rows import check_reduction, prepare, reduce_rows, reduce_weighted_rows, reduction_factor
from ._rules import check_balancing_factor, check_class_count, check_class_weight, check_num_classes_arg, normalizer


def complement_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    balancing_factor: float = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    validate: bool = True,
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
        input, target, ignore_index, reduction, "complement_cross_entropy", validate
    )
    check_class_weight(weight, logits.shape[1], "complement_cross_entropy")
    scale = -balancing_factor / normalizer("complement_classes", logits.shape[1])
    if weight is not None:
        ce_rows, complement_rows = cross_entropy_and_complement_entropy_rows(logits, safe_target, 1.0, scale)
        return reduce_weighted_rows(ce_rows + complement_rows, safe_target, weight, kept, reduction, target_shape)
    factor = reduction_factor(kept, reduction, logits.shape[0])
    if factor is not None:  # the op scales and reduces
        ce, complement = cross_entropy_and_complement_entropy_rows(
            logits, safe_target, factor, scale * factor, reduce=True
        )
        return ce + complement
    ce_rows, complement_rows = cross_entropy_and_complement_entropy_rows(logits, safe_target, 1.0, scale)
    return reduce_rows(ce_rows + complement_rows, kept, reduction, target_shape)


class ComplementCrossEntropy(nn.Module):
    """Module twin of :func:`complement_cross_entropy`.

    >>> import torch
    >>> from complement import ComplementCrossEntropy
    >>> ComplementCrossEntropy()(torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0]))
    tensor(0.3775)
    """

    def __init__(
        self,
        balancing_factor: float = 1.0,
        *,
        weight: Tensor | None = None,
        num_classes: int | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        validate: bool = True,
    ):
        super().__init__()
        check_balancing_factor(balancing_factor)
        check_num_classes_arg(num_classes, "ComplementCrossEntropy")
        check_ignore_index(ignore_index)
        check_reduction(reduction)
        if weight is not None:
            check_class_weight(weight, weight.shape[0] if isinstance(weight, Tensor) else 0, "ComplementCrossEntropy")
        self.balancing_factor = balancing_factor
        self.weight: Tensor | None
        self.register_buffer("weight", weight)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.validate = validate

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_class_count(self.num_classes, input, type(self).__name__)
        return complement_cross_entropy(
            input, target, self.weight, balancing_factor=self.balancing_factor, ignore_index=self.ignore_index,
            reduction=self.reduction, validate=self.validate,
        )  # fmt: skip

    def extra_repr(self) -> str:
        weighted = ", weighted" if self.weight is not None else ""
        return f"balancing_factor={self.balancing_factor}, reduction={self.reduction!r}{weighted}"
