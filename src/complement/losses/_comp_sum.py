"""The shared frame of the losses that are a function of the target's probability alone.

Focal loss, generalized cross-entropy and MAE are all ``f(p_g)`` per row (Mao, Mohri and
Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and Applications", ICML 2023,
call this family comp-sum losses). :func:`target_probability_loss` validates the inputs
as every loss of the package does, computes ``log p_g`` stably (``log_softmax``, in
float32 for half inputs), applies the row loss, and reduces with ``F.cross_entropy``'s
conventions, class ``weight`` included.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_ignore_index
from ..ops.complement_entropy import upcast
from ._rows import check_reduction, prepare, reduce_rows, reduce_weighted_rows
from ._rules import check_class_weight


def target_probability_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    row_loss: Callable[[Tensor], Tensor],
    *,
    ignore_index: int,
    reduction: str,
    validate: bool,
    loss_name: str,
) -> Tensor:
    """``reduction`` over rows of ``row_loss(log p_g)``."""
    logits, safe_target, kept, target_shape = prepare(input, target, ignore_index, reduction, loss_name, validate)
    check_class_weight(weight, logits.shape[1], loss_name)
    log_p = F.log_softmax(upcast(logits), dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    per_row = row_loss(log_p)
    if weight is not None:
        return reduce_weighted_rows(per_row, safe_target, weight, kept, reduction, target_shape)
    return reduce_rows(per_row, kept, reduction, target_shape)


class TargetProbabilityModule(nn.Module):
    """The Module twins' shared part: the class ``weight`` buffer, ``ignore_index``, ``reduction``
    and ``validate``, checked once; a subclass adds its own parameter and ``forward``."""

    def __init__(self, *, weight: Tensor | None, ignore_index: int, reduction: str, validate: bool):
        super().__init__()
        check_ignore_index(ignore_index)
        check_reduction(reduction)
        if weight is not None:
            check_class_weight(weight, weight.shape[0] if isinstance(weight, Tensor) else 0, type(self).__name__)
        self.weight: Tensor | None
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.validate = validate

    def _options(self) -> dict:
        return {"ignore_index": self.ignore_index, "reduction": self.reduction, "validate": self.validate}

    def _repr(self, own: str = "") -> str:
        weighted = ", weighted" if self.weight is not None else ""
        return f"{own + ', ' if own else ''}reduction={self.reduction!r}{weighted}"
