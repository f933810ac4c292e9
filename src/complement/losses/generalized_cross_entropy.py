"""Generalized cross-entropy, a noise-robust baseline between cross-entropy and MAE.

Zhang and Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks with
Noisy Labels", NeurIPS 2018 (https://arxiv.org/abs/1805.07836)::

    L_q = (1 - p_g^q) / q,    0 < q <= 1

It tends to cross-entropy as ``q -> 0`` and is ``1 - p_g`` (MAE up to a factor 2) at
``q = 1``; the paper's default is ``q = 0.7``. It is the comp-sum loss with ``tau = 1 + q``
(:func:`.comp_sum_loss`; Mao, Mohri and Zhong, ICML 2023). Registered as
``generalized_cross_entropy`` (alias ``gen_ce``), a name kept apart from ``gce``, which
here is *guided* complement entropy. ``p_g^q`` is ``exp(q * log p_g)`` from
``log_softmax``, so it is exact for tiny ``p_g``. ``weight``, ``ignore_index`` and
``reduction`` follow ``F.cross_entropy``.
"""

from __future__ import annotations

from torch import Tensor

from .._validation import check_number
from ._comp_sum import TargetProbabilityModule, target_probability_loss


def _check_q(q: float) -> None:
    check_number("q", q, hint=" (the exponent of generalized cross-entropy, in (0, 1])")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1] (0 would be cross-entropy, 1 is MAE / 2); got {q}")


def generalized_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    q: float = 0.7,
    ignore_index: int = -100,
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """``(1 - p_g^q) / q`` with ``F.cross_entropy``'s conventions.

    >>> import torch
    >>> from complement import generalized_cross_entropy
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> generalized_cross_entropy(logits, target)
    tensor(0.5797)
    >>> (1 - logits.softmax(1)[0, 0] ** 0.7) / 0.7
    tensor(0.5797)
    """
    _check_q(q)
    return target_probability_loss(
        input, target, weight, lambda log_p: (1 - (q * log_p).exp()) / q, ignore_index=ignore_index,
        reduction=reduction, validate=validate, loss_name="generalized_cross_entropy",
    )  # fmt: skip


class GeneralizedCrossEntropy(TargetProbabilityModule):
    """Module twin of :func:`generalized_cross_entropy`."""

    def __init__(
        self,
        q: float = 0.7,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        validate: bool = True,
    ):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction, validate=validate)
        _check_q(q)
        self.q = q

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return generalized_cross_entropy(input, target, self.weight, q=self.q, **self._options())

    def extra_repr(self) -> str:
        return self._repr(f"q={self.q}")
