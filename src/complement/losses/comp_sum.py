"""The comp-sum losses, one family indexed by ``tau >= 0`` that holds cross-entropy and its robust kin.

Mao, Mohri and Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and
Applications", ICML 2023 (https://arxiv.org/abs/2304.07288). With
``u = sum_j exp(z_j - z_g) = 1 / p_g`` (the sum over ``j != g`` alone is ``u - 1``)::

    Phi^tau(u) = (u^(1 - tau) - 1) / (1 - tau)    tau != 1
    Phi^1(u)   = log u                            (its limit as tau -> 1)

===============  ====================================================================
``tau = 0``      sum-exponential loss, ``u - 1 = sum_{j != g} exp(z_j - z_g)``
``0 < tau < 1``  between it and cross-entropy, ``(p_g^(tau - 1) - 1) / (1 - tau)``
``tau = 1``      cross-entropy (logistic loss), ``-log p_g``
``1 < tau < 2``  generalized cross-entropy with ``q = tau - 1``, ``(1 - p_g^q) / q``
``tau = 2``      ``1 - p_g``: mean absolute error / 2 (:func:`.mean_absolute_error` is
                 ``2 (1 - p_g)``, the l1 distance to the one-hot target)
``tau > 2``      ``(1 - p_g^(tau - 1)) / (tau - 1)``, bounded by ``1 / (tau - 1)``
===============  ====================================================================

``Phi^tau(u)`` is the integral of ``s^(-tau)`` from 1 to ``u``: the loss decreases in ``tau``
for a fixed ``p_g``, and is bounded exactly when ``tau > 1``.
Registered as ``comp_sum`` (the Module's ``tau`` is 1, cross-entropy, unless given).

Computed in log space: ``log u = -log p_g`` from ``log_softmax`` (float32 for half
inputs), and ``Phi^tau(u) = expm1((1 - tau) log u) / (1 - tau)``, which is exact for
every ``tau`` and continuous into ``log u`` at ``tau = 1`` (the form ``(u^(1 - tau) - 1) /
(1 - tau)`` loses digits near it: at ``|1 - tau| = 1e-8``, half of float64's and all of
float32's).

Overflow, ``tau < 1``: the loss is unbounded, ``u^(1 - tau) = exp((1 - tau) log u)``, and
a badly wrong row overflows the compute dtype once ``(1 - tau) log u`` passes about 88.7
in float32 (709.8 in float64); at ``tau = 0`` that is a target logit about 89 below the
largest. Such a row's loss is ``+inf`` (no clamp: the value is not representable, and
``inf`` is what the training front ends' ``check_finite`` stops on), and its gradient is
0, never NaN (left alone, ``inf`` times a softmax probability that underflowed to 0 would
be NaN). The other rows keep their exact losses and gradients, also under a reduction
whose value is ``inf``. As with ``F.cross_entropy``, a class weight of 0 on such a row
gives NaN (``0 * inf``). ``tau >= 1`` never overflows: ``log u`` is finite wherever
``log p_g`` is, and ``tau > 1`` is bounded.

``weight``, ``ignore_index`` and ``reduction`` follow ``F.cross_entropy``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._validation import check_number
from ._comp_sum import TargetProbabilityModule, target_probability_loss

_TAU_HINT = " (the comp-sum exponent: 0 sum-exponential, 1 cross-entropy, 2 MAE / 2)"


def check_tau(tau: Any) -> None:
    """``tau`` is a finite real number >= 0 (not a bool or a tensor)."""
    check_number("tau", tau, hint=_TAU_HINT)
    if not tau >= 0:
        raise ValueError(f"tau must be >= 0{_TAU_HINT}; got {tau}")


def _row_loss(tau: float) -> Callable[[Tensor], Tensor]:
    """``Phi^tau(1 / p_g)`` from ``log p_g``; an overflowing row is ``inf`` with gradient 0."""
    a = 1.0 - float(tau)

    def row_loss(log_p: Tensor) -> Tensor:
        log_u = -log_p
        if abs(a) < torch.finfo(log_p.dtype).tiny:  # tau = 1 to the dtype's precision: the limit, log u
            return log_u
        t = a * log_u
        if a < 0:  # tau > 1: in [0, 1 / (tau - 1)], never overflows
            return torch.expm1(t) / a
        with torch.no_grad():
            over = torch.isposinf(torch.expm1(t) / a)  # NaN (a NaN logit) stays NaN below
        inner = torch.where(over, torch.zeros_like(t), t)  # so the gradient there is 0, not inf * 0
        return torch.where(over, torch.full_like(t, float("inf")), torch.expm1(inner) / a)

    return row_loss


def comp_sum_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    tau: float,
    ignore_index: int = -100,
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """The comp-sum loss ``Phi^tau(1 / p_g)`` with ``F.cross_entropy``'s conventions (``weight`` third, as there).

    ``tau = 0`` is the sum-exponential loss, 1 cross-entropy, ``(1, 2)`` generalized
    cross-entropy with ``q = tau - 1``, 2 ``1 - p_g`` (half of MAE). For ``tau < 1`` a row
    whose loss overflows is ``inf`` with gradient 0 (see the module's text).

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from complement import comp_sum_loss
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> comp_sum_loss(logits, target, tau=1.0), F.cross_entropy(logits, target)
    (tensor(0.7437), tensor(0.7437))
    >>> comp_sum_loss(logits, target, tau=0.0)  # sum-exponential: 3 exp(1 - 2)
    tensor(1.1036)
    >>> comp_sum_loss(logits, target, tau=2.0), 1 - logits.softmax(1)[0, 0]
    (tensor(0.5246), tensor(0.5246))
    """
    check_tau(tau)
    return target_probability_loss(
        input, target, weight, _row_loss(tau), ignore_index=ignore_index, reduction=reduction, validate=validate,
        loss_name="comp_sum_loss",
    )  # fmt: skip


class CompSumLoss(TargetProbabilityModule):
    """Module twin of :func:`comp_sum_loss`; ``tau`` is 1 (cross-entropy) unless given."""

    def __init__(
        self,
        tau: float = 1.0,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        validate: bool = True,
    ):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction, validate=validate)
        check_tau(tau)
        self.tau = tau

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return comp_sum_loss(input, target, self.weight, tau=self.tau, **self._options())

    def extra_repr(self) -> str:
        return self._repr(f"tau={self.tau}")
