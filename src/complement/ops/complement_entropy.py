"""Row-wise complement entropy as an autograd Function with the analytic gradient.

For logits ``z`` (K classes) and target ``g``, the complement distribution is the
softmax of ``z`` with ``z_g`` removed::

    q_j = exp(z_j - c),   c = logsumexp_{j != g} z_j          (j != g)
    H   = -sum_{j != g} q_j log q_j = log s - sum_{j != g} e_j d_j / s,
          with d_j = z_j - max_{k != g} z_k,  e_j = exp(d_j),  s = sum e_j
    dH/dz_j = -q_j (log q_j + H)   (j != g),     dH/dz_g = 0

Nothing here forms ``1 - p_g``, so ``H`` is exact even when ``p_g`` rounds to 1.
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


def target_mask(z: Tensor, target: Tensor) -> Tensor:
    return torch.arange(z.shape[1], device=z.device) == target.unsqueeze(1)


def complement_stats(z: Tensor, is_target: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(c, H)`` per row: the complement log-sum-exp and entropy."""
    zc = z.masked_fill(is_target, float("-inf"))
    m = zc.amax(dim=1, keepdim=True)
    d = zc - m
    e = d.exp()
    s = e.sum(dim=1)
    # e * d is 0 * -inf = NaN for the target and excluded classes; they contribute 0.
    ed = torch.where(e == 0, 0.0, e * d).sum(dim=1)
    log_s = s.log()
    return m.squeeze(1) + log_s, log_s - ed / s


def complement_grad(z: Tensor, is_target: Tensor, c: Tensor, entropy: Tensor, grad_entropy: Tensor) -> Tensor:
    """``grad_entropy * dH/dz`` in the compute dtype."""
    log_q = z - c.unsqueeze(1)
    q = log_q.exp()
    grad = -grad_entropy.unsqueeze(1) * q * (log_q + entropy.unsqueeze(1))
    return torch.where(is_target | (q == 0), 0.0, grad)


def _complement_forward(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    z = upcast(logits)
    return complement_stats(z, target_mask(z, target))


def _complement_backward(logits: Tensor, target: Tensor, c: Tensor, entropy: Tensor, grad_entropy: Tensor) -> Tensor:
    z = upcast(logits)
    return complement_grad(z, target_mask(z, target), c, entropy, grad_entropy).to(logits.dtype)


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
