"""Row-wise complement entropy as an autograd Function with the analytic gradient.

Two formulations of the same math, each the fastest for how it runs:

- *logits space* (:class:`ComplementEntropyFunction`), for ``torch.compile``: it saves
  the logits and two numbers per row, and Inductor fuses each pass into one read of the
  row, so no N x K temporary exists;
- *probability space* (:class:`EagerComplementEntropyFunction`), for eager torch, which
  pays per op: four ops forward and three backward (about a third of the logits-space
  count), so small classifier heads cost little more than ``F.cross_entropy``.

Logits space:

For logits ``z`` (K classes) and target ``g``, the complement distribution is the
softmax of ``z`` with ``z_g`` removed::

    q_j = exp(z_j - c),   c = logsumexp_{j != g} z_j          (j != g)
    H   = -sum_{j != g} q_j log q_j = log s - sum_{j != g} e_j d_j / s,
          with d_j = z_j - max_{k != g} z_k,  e_j = exp(d_j),  s = sum e_j
    dH/dz_j = -q_j (log q_j + H)   (j != g),     dH/dz_g = 0

Probability space, with ``entr(x) = -x log x`` (``entr(0) = 0``)::

    q   = softmax(z with z_g set to -inf)
    H   = sum_j entr(q_j)
    dH/dz_j = entr(q_j) - q_j H        (0 wherever q_j = 0: the target, excluded classes)

Neither forms ``1 - p_g``, so ``H`` is exact even when ``p_g`` rounds to 1.

Both Functions take a row ``weight`` and ``reduce``: they return ``weight * H`` per row,
or ``weight * sum(H)``. A loss passes its normalization and its mean's ``1 / N`` there,
so scaling and reducing add no autograd nodes: on CPU each node costs tens of
microseconds, as much as the whole loss math for a small classifier head.

Logits of ``-inf`` on a non-target class mean "this class is excluded" and get
``q_j = 0`` and zero gradient. A NaN logit, or ``+inf``, makes that row's value NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.special import entr

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


def with_target_logit(entropy: Tensor, z: Tensor, target: Tensor) -> Tensor:
    """``H + 0 * z_g``: ``H`` does not depend on the target logit, but a NaN or infinite one
    then makes the row NaN, as ``F.cross_entropy`` does, instead of hiding a broken model."""
    return entropy + 0.0 * z.gather(1, target.unsqueeze(1)).squeeze(1)


def _complement_forward(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    z = upcast(logits)
    c, entropy = complement_stats(z, target_mask(z, target))
    return c, with_target_logit(entropy, z, target)


def _complement_backward(logits: Tensor, target: Tensor, c: Tensor, entropy: Tensor, grad_entropy: Tensor) -> Tensor:
    z = upcast(logits)
    return complement_grad(z, target_mask(z, target), c, entropy, grad_entropy).to(logits.dtype)


complement_forward_kernel = RowKernel(_complement_forward)
complement_backward_kernel = RowKernel(_complement_backward)


def weigh(rows: Tensor, weight: float, reduce: bool) -> Tensor:
    """``weight * rows``, or ``weight * rows.sum()`` with ``reduce``: a Function's output."""
    if reduce:
        return rows.sum() * weight
    return rows * weight if weight != 1.0 else rows


def rows_grad(grad: Tensor, weight: float, reduce: bool, rows: int) -> Tensor:
    """The gradient of :func:`weigh`'s output, back to one value per row."""
    grad = grad * weight if weight != 1.0 else grad
    return grad.expand(rows) if reduce else grad


class ComplementEntropyFunction(torch.autograd.Function):
    """``H`` per row of ``(M, K)`` logits for valid targets ``(M,)``, in logits space.

    Saves the logits plus ``c`` and ``H`` per row; the backward writes the gradient as
    the only N x K tensor."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: float = 1.0, reduce: bool = False) -> Tensor:
        c, entropy = complement_forward_kernel(logits, target, numel=logits.numel())
        ctx.save_for_backward(logits, target, c, entropy)
        ctx.weight, ctx.reduce = weight, reduce
        return weigh(entropy, weight, reduce)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        logits, target, c, entropy = ctx.saved_tensors
        grad_entropy = rows_grad(grad_output, ctx.weight, ctx.reduce, logits.shape[0])
        grad = complement_backward_kernel(logits, target, c, entropy, grad_entropy, numel=logits.numel())
        return grad, None, None, None


def complement_probabilities(z: Tensor, target: Tensor) -> Tensor:
    """``q``: the softmax of each row with its target logit removed (probability space)."""
    return z.scatter(1, target.unsqueeze(1), float("-inf")).softmax(dim=1)


def complement_grad_from_probabilities(q: Tensor, entropy: Tensor, grad_entropy: Tensor) -> Tensor:
    """``grad_entropy * dH/dz = grad_entropy * (entr(q) - q H)``, in ``q``'s dtype."""
    grad_entropy = grad_entropy.unsqueeze(1)
    return entr(q).mul_(grad_entropy).addcmul_(q, grad_entropy * entropy.unsqueeze(1), value=-1.0)


class EagerComplementEntropyFunction(torch.autograd.Function):
    """``H`` per row from the complement probabilities; saves ``q`` (N x K, float32 or wider)."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: float = 1.0, reduce: bool = False) -> Tensor:
        z = upcast(logits)
        q = complement_probabilities(z, target)
        entropy = with_target_logit(entr(q).sum(dim=1), z, target)
        ctx.save_for_backward(q, entropy)
        ctx.logits_dtype, ctx.weight, ctx.reduce = logits.dtype, weight, reduce
        return weigh(entropy, weight, reduce)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        q, entropy = ctx.saved_tensors
        grad_entropy = rows_grad(grad_output, ctx.weight, ctx.reduce, q.shape[0])
        return complement_grad_from_probabilities(q, entropy, grad_entropy).to(ctx.logits_dtype), None, None, None


def complement_entropy_rows(logits: Tensor, target: Tensor, weight: float = 1.0, reduce: bool = False) -> Tensor:
    """Complement entropy ``H >= 0`` of each row of ``(M, K)`` logits, times ``weight``;
    with ``reduce``, the sum over rows.

    ``target`` must hold valid class indices (replace ignored ones first)."""
    function = (
        ComplementEntropyFunction if complement_forward_kernel.fuses(logits.numel()) else EagerComplementEntropyFunction
    )
    return function.apply(logits, target, weight, reduce)
