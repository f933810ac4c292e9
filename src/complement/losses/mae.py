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

from torch import Tensor

from ._comp_sum import TargetProbabilityModule, target_probability_loss


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


class MeanAbsoluteError(TargetProbabilityModule):
    """Module twin of :func:`mean_absolute_error`."""

    def __init__(
        self, *, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean", validate: bool = True
    ):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction, validate=validate)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mean_absolute_error(input, target, self.weight, **self._options())

    def extra_repr(self) -> str:
        return self._repr()
