"""Mean absolute error on probabilities, the symmetric noise-robust baseline.

Ghosh, Kumar and Sastry, "Robust Loss Functions under Label Noise for Deep Neural
Networks", AAAI 2017 (https://arxiv.org/abs/1712.09482): the l1 distance between the
one-hot target and the predicted distribution::

    MAE = sum_j |[j == g] - p_j| = 2 (1 - p_g)

It is bounded and symmetric, hence robust to symmetric label noise, but trains slowly
(its gradient vanishes as ``p_g -> 0``); Zhang and Sabuncu's generalized cross-entropy
interpolates between it and cross-entropy. It is twice the comp-sum loss with
``tau = 2``, ``1 - p_g`` (:func:`.comp_sum_loss`; the factor 2 is the l1 distance's, kept
as Ghosh et al. define it). Registered as ``mean_absolute_error`` (alias ``mae``);
``weight``, ``ignore_index`` and ``reduction`` follow ``F.cross_entropy``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import check_ignore_index
from ._comp_sum import target_probability_loss
from ._rows import check_reduction
from ._rules import check_class_weight


def mean_absolute_error(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """``2 (1 - p_g)``, the l1 distance of the prediction to the one-hot target.

    >>> import torch
    >>> from complement import mean_absolute_error
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> mean_absolute_error(logits, target)
    tensor(1.0493)
    >>> (torch.nn.functional.one_hot(target, 4) - logits.softmax(1)).abs().sum()
    tensor(1.0493)
    """
    return target_probability_loss(
        input, target, weight, lambda log_p: 2 * (1 - log_p.exp()), ignore_index=ignore_index, reduction=reduction,
        validate=validate, loss_name="mean_absolute_error",
    )  # fmt: skip


class MeanAbsoluteError(nn.Module):
    """Module twin of :func:`mean_absolute_error`."""

    def __init__(
        self, *, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean", validate: bool = True
    ):
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

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mean_absolute_error(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
            validate=self.validate,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" + (", weighted" if self.weight is not None else "")
