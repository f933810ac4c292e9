"""Cross-entropy and complement entropy of each row from one read of the logits.

One pass gives the full log-sum-exp (for CE) and the complement log-sum-exp and
entropy (for COT); the backward combines both gradients in one write::

    dCE/dz = softmax(z) - onehot(g)
    dH/dz_j = -q_j (log q_j + H)   (j != g)

The joint training mode, guided complement entropy and complement cross-entropy
use it, and the chunked large-vocabulary op and the Triton kernel compute the
same quantities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._kernels import RowKernel
from .complement_entropy import complement_grad, complement_stats, target_mask, upcast


def _joint_forward(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    z = upcast(logits)
    is_target = target_mask(z, target)
    lse = torch.logsumexp(z, dim=1)
    cross_entropy = lse - z.gather(1, target.unsqueeze(1)).squeeze(1)
    c, entropy = complement_stats(z, is_target)
    return cross_entropy, entropy, lse, c


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
    """``(CE, H)`` per row of ``(M, K)`` logits for valid targets ``(M,)``."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor):
        cross_entropy, entropy, lse, c = joint_forward_kernel(logits, target, numel=logits.numel())
        ctx.save_for_backward(logits, target, lse, c, entropy)
        return cross_entropy, entropy

    @staticmethod
    def backward(ctx, grad_ce: Tensor, grad_entropy: Tensor):
        logits, target, lse, c, entropy = ctx.saved_tensors
        grad = joint_backward_kernel(logits, target, lse, c, entropy, grad_ce, grad_entropy, numel=logits.numel())
        return grad, None


def cross_entropy_and_complement_entropy_rows(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row ``(cross-entropy, complement entropy)`` of ``(M, K)`` logits.

    ``target`` must hold valid class indices (replace ignored ones first)."""
    return JointFunction.apply(logits, target)
