"""Row-wise complement entropy as an autograd Function with the analytic gradient.

For logits ``z`` (K classes) and target ``g``, the complement distribution is the
softmax of ``z`` with ``z_g`` removed::

    q_j = exp(z_j - c),   c = logsumexp_{j != g} z_j          (j != g)
    H   = -sum_{j != g} q_j log q_j,  log q = log_softmax of z with z_g set to -inf
    dH/dz_j = -q_j (log q_j + H)   (j != g),     dH/dz_g = 0

The math is written with few, fused torch ops (a scatter, a log-softmax, one
elementwise pass and a reduction), since on small inputs each op's dispatch costs more
than its arithmetic. Nothing here forms ``1 - p_g``, so ``H`` is exact even when ``p_g`` rounds to 1.
The Function saves the logits plus two numbers per row (``c`` and ``H``); the
backward writes the gradient as the only N x K tensor.

Logits of ``-inf`` on a non-target class mean "this class is excluded" and get
``q_j = 0`` and zero gradient. A NaN logit, or ``+inf``, makes that row's value NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._kernels import RowKernel


def upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 are computed in float32; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def without_target(z: Tensor, target: Tensor) -> Tensor:
    """``z`` with each row's target logit set to ``-inf``: the complement's logits."""
    return z.scatter(1, target.unsqueeze(1), float("-inf"))


def finite_log(log_q: Tensor) -> Tensor:
    """``log q`` with ``-inf`` (target, excluded classes) raised to the most negative finite
    value, so ``q * log q`` is 0 there instead of ``0 * -inf = NaN``; NaN stays NaN."""
    return log_q.clamp(min=torch.finfo(log_q.dtype).min)


def complement_stats(z: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(c, H)`` per row: the complement log-sum-exp and entropy."""
    zc = without_target(z, target)
    log_q = finite_log(zc.log_softmax(dim=1))
    entropy = -(log_q.exp() * log_q).sum(dim=1)
    # log_softmax is monotone, so its row maximum sits at the largest logit: c = max z - max log q.
    return zc.amax(dim=1) - log_q.amax(dim=1), entropy


def complement_grad(z: Tensor, target: Tensor, c: Tensor, entropy: Tensor, grad_entropy: Tensor) -> Tensor:
    """``grad_entropy * dH/dz`` in the compute dtype (0 at the target and excluded classes)."""
    log_q = finite_log(without_target(z, target) - c.unsqueeze(1))
    return log_q.exp() * (log_q + entropy.unsqueeze(1)) * (-grad_entropy).unsqueeze(1)


def _complement_forward(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    return complement_stats(upcast(logits), target)


def _complement_backward(logits: Tensor, target: Tensor, c: Tensor, entropy: Tensor, grad_entropy: Tensor) -> Tensor:
    return complement_grad(upcast(logits), target, c, entropy, grad_entropy).to(logits.dtype)


complement_forward_kernel = RowKernel(_complement_forward)
complement_backward_kernel = RowKernel(_complement_backward)


class ComplementEntropyFunction(torch.autograd.Function):
    """``H`` per row of ``(M, K)`` logits for valid targets ``(M,)``."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor) -> Tensor:
        c, entropy = complement_forward_kernel(logits, target, numel=logits.numel())
        ctx.save_for_backward(logits, target, c, entropy)
        return entropy

    @staticmethod
    def backward(ctx, grad_entropy: Tensor):
        logits, target, c, entropy = ctx.saved_tensors
        grad = complement_backward_kernel(logits, target, c, entropy, grad_entropy, numel=logits.numel())
        return grad, None


def complement_entropy_rows(logits: Tensor, target: Tensor) -> Tensor:
    """Complement entropy ``H >= 0`` of each row of ``(M, K)`` logits.

    ``target`` must hold valid class indices (replace ignored ones first)."""
    return ComplementEntropyFunction.apply(logits, target)
