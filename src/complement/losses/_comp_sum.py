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
from torch import Tensor

from ..ops.complement_entropy import upcast
from ._rows import prepare, reduce_rows, reduce_weighted_rows
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
