"""Cross-entropy and complement entropy of each row from one read of the logits.

One pass gives the full log-sum-exp (for CE) and the complement log-sum-exp and
entropy (for COT); the backward combines both gradients in one write::

    dCE/dz = softmax(z) - onehot(g)
    dH/dz_j = -q_j (log q_j + H)   (j != g)

As for the complement entropy alone (:mod:`complement.ops.complement_entropy`), a
logits-space Function serves ``torch.compile`` and a probability-space one, with few
ops, serves eager torch; the latter saves ``log_softmax(z)`` and ``q`` (two N x K).

The joint training mode, guided complement entropy and complement cross-entropy
use it, and the chunked large-vocabulary op and the Triton kernel compute the
same quantities.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.special import entr

from ._kernels import RowKernel
from .complement_entropy import (
    complement_grad,
    complement_grad_from_probabilities,
    complement_probabilities,
    complement_stats,
    rows_grad,
    target_mask,
    upcast,
    weigh,
    with_target_logit,
)


def _joint_forward(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    z = upcast(logits)
    is_target = target_mask(z, target)
    lse = torch.logsumexp(z, dim=1)
    cross_entropy = lse - z.gather(1, target.unsqueeze(1)).squeeze(1)
    c, entropy = complement_stats(z, is_target)
    return cross_entropy, with_target_logit(entropy, z, target), lse, c


def _joint_backward(
    logits: Tensor, target: Tensor, lse: Tensor, c: Tensor, entropy: Tensor, grad_ce: Tensor, grad_entropy: Tensor
) -> Tensor:
    z = upcast(logits)
    is_target = target_mask(z, target)
    grad_ce_z = grad_ce.unsqueeze(1) * ((z - lse.unsqueeze(1)).exp() - is_target.to(z.dtype))
    return (grad_ce_z + complement_grad(z, is_target, c, entropy, grad_entropy)).to(logits.dtype)


joint_forward_kernel = RowKernel(_joint_forward)
joint_backward_kernel = RowKernel(_joint_backward)


class JointFunction(torch.autograd.Function):
    """``(CE, H)`` per row of ``(M, K)`` logits for valid targets ``(M,)``, in logits space,
    weighted and optionally summed like :class:`~complement.ops.complement_entropy.ComplementEntropyFunction`."""

    @staticmethod
    def forward(
        ctx, logits: Tensor, target: Tensor, ce_weight: float = 1.0, entropy_weight: float = 1.0, reduce: bool = False
    ):
        cross_entropy, entropy, lse, c = joint_forward_kernel(logits, target, numel=logits.numel())
        ctx.save_for_backward(logits, target, lse, c, entropy)
        ctx.weights, ctx.reduce = (ce_weight, entropy_weight), reduce
        return weigh(cross_entropy, ce_weight, reduce), weigh(entropy, entropy_weight, reduce)

    @staticmethod
    def backward(ctx, grad_ce: Tensor, grad_entropy: Tensor):
        logits, target, lse, c, entropy = ctx.saved_tensors
        grad_ce, grad_entropy = (
            rows_grad(g, w, ctx.reduce, logits.shape[0]) for g, w in zip((grad_ce, grad_entropy), ctx.weights)
        )
        grad = joint_backward_kernel(logits, target, lse, c, entropy, grad_ce, grad_entropy, numel=logits.numel())
        return grad, None, None, None, None


class EagerJointFunction(torch.autograd.Function):
    """``(CE, H)`` per row in probability space; saves ``log_softmax(z)`` and ``q``."""

    @staticmethod
    def forward(
        ctx, logits: Tensor, target: Tensor, ce_weight: float = 1.0, entropy_weight: float = 1.0, reduce: bool = False
    ):
        z = upcast(logits)
        log_p = z.log_softmax(dim=1)
        cross_entropy = log_p.gather(1, target.unsqueeze(1)).squeeze(1).neg()
        q = complement_probabilities(z, target)
        entropy = with_target_logit(entr(q).sum(dim=1), z, target)
        ctx.save_for_backward(log_p, q, entropy, target)
        ctx.logits_dtype, ctx.weights, ctx.reduce = logits.dtype, (ce_weight, entropy_weight), reduce
        return weigh(cross_entropy, ce_weight, reduce), weigh(entropy, entropy_weight, reduce)

    @staticmethod
    def backward(ctx, grad_ce: Tensor, grad_entropy: Tensor):
        log_p, q, entropy, target = ctx.saved_tensors
        grad_ce, grad_entropy = (
            rows_grad(g, w, ctx.reduce, q.shape[0]) for g, w in zip((grad_ce, grad_entropy), ctx.weights)
        )
        grad = complement_grad_from_probabilities(q, entropy, grad_entropy)
        # + grad_ce * (softmax(z) - onehot(g))
        grad.addcmul_(log_p.exp(), grad_ce.unsqueeze(1)).scatter_add_(
            1, target.unsqueeze(1), grad_ce.neg().unsqueeze(1)
        )
        return grad.to(ctx.logits_dtype), None, None, None, None


def cross_entropy_and_complement_entropy_rows(
    logits: Tensor, target: Tensor, ce_weight: float = 1.0, entropy_weight: float = 1.0, reduce: bool = False
) -> tuple[Tensor, Tensor]:
    """Per-row ``(ce_weight * cross-entropy, entropy_weight * complement entropy)`` of ``(M, K)``
    logits; with ``reduce``, each summed over rows.

    ``target`` must hold valid class indices (replace ignored ones first)."""
    function = JointFunction if joint_forward_kernel.fuses(logits.numel()) else EagerJointFunction
    return function.apply(logits, target, ce_weight, entropy_weight, reduce)
