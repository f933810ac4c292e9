"""Triton kernel: cross-entropy and complement entropy of each row in one read, with
the combined gradient written in place over the logits.

One program handles one row of logits ``z`` (K classes, target ``g``). The first
pass keeps running sums with online max-rescaling (as in online softmax), for all
classes and for the complement ``j != g``::

    m  = max_j z_j,          s  = sum_j exp(z_j - m)                  -> lse = m + log s
    mc = max_{j!=g} z_j,     sc = sum_{j!=g} exp(z_j - mc)            -> c   = mc + log sc
                             tc = sum_{j!=g} exp(z_j - mc) (z_j - mc) -> H   = log sc - tc / sc
    CE = lse - z_g

When the running max moves from ``m_old`` to ``m_new``, ``s`` and ``tc`` are
multiplied by ``r = exp(m_old - m_new)`` and ``tc`` also gains ``sc * (m_old - m_new)``
(every shifted logit moved by that much). If per-row upstream gradients ``a`` (for
CE) and ``b`` (for H) are given, a second pass overwrites the row with::

    dL/dz_j = a (p_j - [j == g]) - b q_j (log q_j + H) [j != g],
    p_j = exp(z_j - lse),   q_j = exp(z_j - c)

Math is in float32 whatever the logits' dtype; the gradient is stored in that dtype.
Targets must be valid class indices (remove or replace ignored rows first).

``triton`` is imported by this module; import it only where Triton can run: CUDA
tensors, or CPU tensors in a process started with ``TRITON_INTERPRET=1`` (Triton's
numpy interpreter, used by the tests; Triton reads the variable once, when it is
first imported, so setting it later has no effect).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from triton.runtime.jit import JITFunction

# Largest block of columns one program loads at a time (Liger-Kernel found 32k a good
# trade-off between loop trips and register pressure for its cross-entropy kernel).
MAX_BLOCK = 32768


# Triton wraps its own library (tl.sum, tl.max) for the interpreter or the compiler
# when it is imported; the kernel below is decorated the same way.
INTERPRETED = not isinstance(tl.sum, JITFunction)


@triton.jit
def _loss_rows_kernel(
    logits_ptr,
    row_stride,
    target_ptr,
    ce_ptr,
    entropy_ptr,
    grad_ce_ptr,
    grad_entropy_ptr,
    n_cols,
    NEED_CE: tl.constexpr,
    NEED_COMPLEMENT: tl.constexpr,
    WRITE_GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # int64 so that row * row_stride does not overflow for N x V > 2^31.
    row = tl.program_id(0).to(tl.int64)
    row_ptr = logits_ptr + row * row_stride
    g = tl.load(target_ptr + row).to(tl.int64)
    neg_inf = float("-inf")

    m = neg_inf
    s = 0.0
    mc = neg_inf
    sc = 0.0
    tc = 0.0
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        z = tl.load(row_ptr + cols, mask=cols < n_cols, other=neg_inf).to(tl.float32)
        if NEED_CE:
            m_new = tl.maximum(m, tl.max(z, 0))
            # Shift by 0 while everything seen is -inf, so exp() never sees -inf - -inf.
            shift = tl.where(m_new == neg_inf, 0.0, m_new)
            s = s * tl.exp(m - shift) + tl.sum(tl.exp(z - shift), 0)
            m = m_new
        if NEED_COMPLEMENT:
            zc = tl.where(cols == g, neg_inf, z)
            mc_new = tl.maximum(mc, tl.max(zc, 0))
            shift = tl.where(mc_new == neg_inf, 0.0, mc_new)
            rescale = tl.exp(mc - shift)
            e = tl.exp(zc - shift)
            # Excluded classes (-inf) and an empty running sum contribute 0, not 0 * -inf.
            moved = sc * (tl.where(sc > 0, mc, shift) - shift)
            tc = rescale * (tc + moved) + tl.sum(e * tl.where(e > 0, zc - shift, 0.0), 0)
            sc = sc * rescale + tl.sum(e, 0)
            mc = mc_new

    if NEED_CE:
        lse = m + tl.log(s)
        z_g = tl.load(row_ptr + g).to(tl.float32)
        tl.store(ce_ptr + row, lse - z_g)
    if NEED_COMPLEMENT:
        log_sc = tl.log(sc)
        c = mc + log_sc
        entropy = log_sc - tc / sc
        # H does not depend on z_g; + 0 * z_g makes a NaN or infinite target logit give NaN, as CE does.
        target_logit = tl.load(row_ptr + g).to(tl.float32)
        tl.store(entropy_ptr + row, entropy + 0.0 * target_logit)

    if WRITE_GRAD:
        a = 0.0
        b = 0.0
        if NEED_CE:
            a = tl.load(grad_ce_ptr + row).to(tl.float32)
        if NEED_COMPLEMENT:
            b = tl.load(grad_entropy_ptr + row).to(tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            inside = cols < n_cols
            z = tl.load(row_ptr + cols, mask=inside, other=neg_inf).to(tl.float32)
            is_target = cols == g
            grad = tl.zeros([BLOCK], dtype=tl.float32)
            if NEED_CE:
                grad += a * (tl.exp(z - lse) - tl.where(is_target, 1.0, 0.0))
            if NEED_COMPLEMENT:
                log_q = z - c
                q = tl.exp(log_q)
                log_q = tl.where(q > 0, log_q, 0.0)  # q = 0 (excluded class): gradient 0, not 0 * -inf
                grad += tl.where(is_target, 0.0, -b * q * (log_q + entropy))
            tl.store(row_ptr + cols, grad.to(logits_ptr.dtype.element_ty), mask=inside)


def can_run_on(device: torch.device) -> bool:
    """Whether the kernel can run on tensors on ``device`` in this process."""
    return device.type in ("cpu", "cuda") if INTERPRETED else device.type == "cuda"


def _num_warps(block: int) -> int:
    # More warps for long rows keep each thread's share of the block small.
    return 32 if block >= 16384 else 16 if block >= 4096 else 8 if block >= 1024 else 4


def loss_rows(
    logits: Tensor,
    target: Tensor,
    *,
    ce: bool = True,
    complement: bool = True,
    grad_ce: Tensor | None = None,
    grad_entropy: Tensor | None = None,
    max_block: int = MAX_BLOCK,
) -> tuple[Tensor | None, Tensor | None]:
    """Per-row ``(CE, H)`` of ``(M, K)`` logits (float32; ``None`` for a term not asked for).

    If ``grad_ce`` or ``grad_entropy`` (shape ``(M,)``) is given, ``logits`` is
    overwritten with ``grad_ce * dCE/dz + grad_entropy * dH/dz`` in its own dtype.
    ``target`` must hold valid class indices. ``max_block`` caps the columns loaded at
    once (a power of two; tests lower it to exercise the online rescaling across blocks).
    """
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(
            f"loss_rows expects (M, K) logits and (M,) targets; got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(
            f"the Triton loss kernel computes in float32 and takes float32/float16/bfloat16; got {logits.dtype}"
        )
    if not (ce or complement):
        raise ValueError("loss_rows: ask for at least one of ce and complement")
    if (grad_ce is not None and not ce) or (grad_entropy is not None and not complement):
        raise ValueError("loss_rows: a gradient was given for a term that is not computed")
    write = grad_ce is not None or grad_entropy is not None
    if write and logits.stride(1) != 1:
        raise ValueError("loss_rows writes the gradient in place and needs logits with contiguous rows")
    if not can_run_on(logits.device):
        raise RuntimeError(
            f"the Triton loss kernel runs on CUDA tensors, or on CPU tensors in a process started with "
            f"TRITON_INTERPRET=1 (interpreter {'on' if INTERPRETED else 'off'}); got {logits.device}"
        )
    logits = logits if logits.stride(1) == 1 else logits.contiguous()
    rows, num_classes = logits.shape
    target = target.contiguous()
    ce_out = torch.empty(rows, dtype=torch.float32, device=logits.device)
    entropy_out = torch.empty(rows, dtype=torch.float32, device=logits.device)
    # An unused pointer argument still needs a tensor; the constexpr flags keep it untouched.
    grad_ce = ce_out if grad_ce is None else grad_ce.to(torch.float32).contiguous()
    grad_entropy = entropy_out if grad_entropy is None else grad_entropy.to(torch.float32).contiguous()
    if rows == 0:
        return (ce_out if ce else None), (entropy_out if complement else None)
    block = min(max_block, triton.next_power_of_2(num_classes))
    _loss_rows_kernel[(rows,)](
        logits,
        logits.stride(0),
        target,
        ce_out,
        entropy_out,
        grad_ce,
        grad_entropy,
        num_classes,
        NEED_CE=ce,
        NEED_COMPLEMENT=complement,
        WRITE_GRAD=write,
        BLOCK=block,
        num_warps=_num_warps(block),
    )
    return (ce_out if ce else None), (entropy_out if complement else None)
