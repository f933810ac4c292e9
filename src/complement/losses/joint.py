"""Cross-entropy and the complement loss of COT from one read of the logits.

Returns ``(CE, L_complement)`` where ``CE`` equals ``F.cross_entropy`` and
``L_complement`` equals :func:`complement_entropy` with the same arguments; both
are reduced the same way and both gradients come from one backward pass over the
logits (:mod:`complement.ops.joint`). The COT training engine's ``joint`` mode
minimizes ``CE + weight * L_complement`` through it.
"""

from __future__ import annotations

from torch import Tensor

from .._validation import check_choice
from ..ops.joint import cross_entropy_and_complement_entropy_rows
from ._rows import prepare, reduce_rows, reduction_factor
from ._rules import NORMALIZATIONS, normalizer


def cross_entropy_and_complement_entropy(
    input: Tensor,
    target: Tensor,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "classes",
    validate: bool = True,
) -> tuple[Tensor, Tensor]:
    """Return ``(cross_entropy, complement_entropy)`` computed in one pass.

    >>> import torch
    >>> from complement import cross_entropy_and_complement_entropy
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> cross_entropy_and_complement_entropy(logits, target)
    (tensor(0.7437), tensor(-0.2747))
    >>> torch.nn.functional.cross_entropy(logits, target)
    tensor(0.7437)
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
    logits, safe_target, kept, target_shape = prepare(
        input, target, ignore_index, reduction, "cross_entropy_and_complement_entropy", validate
    )
    weight = -1.0 / normalizer(normalization, logits.shape[1])
    factor = reduction_factor(kept, reduction, logits.shape[0])
    if factor is not None:  # the op scales and reduces: one autograd node
        return cross_entropy_and_complement_entropy_rows(logits, safe_target, factor, weight * factor, reduce=True)
    ce_rows, complement_rows = cross_entropy_and_complement_entropy_rows(logits, safe_target, 1.0, weight)
    return (
        reduce_rows(ce_rows, kept, reduction, target_shape),
        reduce_rows(complement_rows, kept, reduction, target_shape),
    )
