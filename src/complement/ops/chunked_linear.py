"""Output layer + cross-entropy + complement loss, chunked so the N x V logits never exist.

For hidden states ``h`` (N, H), an output layer ``W`` (V, H) with bias ``b`` (V,) and
targets ``g``::

    z_i    = W h_i + b                                   (one row of V logits)
    CE_i   = lse(z_i) - z_ig
    H_i    = -sum_{j != g} q_ij log q_ij,   q_ij = exp(z_ij - lse_{k != g} z_ik)
    COT:  L_i = -H_i / Z              GCE:  L_i = -p_ig^alpha H_i / Z,   p_ig = exp(-CE_i)

and with ``G = dLoss/dz`` for a block of rows (the row math of :mod:`complement.ops.joint`)::

    dLoss/dh = G W,     dLoss/dW = sum_blocks G^T h,     dLoss/db = sum_rows G

The results equal ``F.cross_entropy`` / :func:`complement.cross_entropy_and_complement_entropy`
on ``h @ W.T + b`` with the same arguments (same reductions, ``ignore_index``, and
all-ignored batches giving 0 with zero gradient).

How: logits are computed ``chunk_rows`` rows at a time into one reused buffer, and
each chunk is dropped before the next. Peak extra memory is ``O(chunk_rows x V)``
plus the gradients themselves (N x H, V x H), never N x V. ``chunk_rows`` comes from
``memory_budget_bytes`` unless ``chunk_size`` is given. Two strategies:

- One scalar loss (``linear_cross_entropy``, ``linear_complement_entropy``,
  ``linear_guided_complement_entropy`` with ``reduction`` ``"mean"``/``"sum"``: COT's
  alternate steps and GCE): the gradients are computed in the forward, chunk by
  chunk, as Liger-Kernel does (3 matrix products), so they occupy memory from the
  forward on; the backward only scales them.
- Two outputs (``linear_cross_entropy_and_complement``) or ``reduction="none"``: the
  upstream gradient of each output is not known in the forward, so the forward
  keeps a few numbers per row (``lse``, the complement ``lse``, ``H``) and the
  backward recomputes each chunk's logits (4 matrix products) and applies the exact
  upstream per-row gradients, whatever the outputs were combined into. When all rows
  fit in one chunk, the forward's logits are kept instead (3 products).

Ignored rows are dropped before the matrix products, so padding costs nothing.
float16/bfloat16 inputs: logits and ``G`` are in the input dtype (as an unfused model
computes them), the row math runs in float32, per-row losses are float32, and the
weight/bias gradients accumulate in float32 before being returned in the input dtype.

Backends: ``"torch"`` runs the row math of :mod:`complement.ops.joint` /
:mod:`complement.ops.complement_entropy` on each chunk; ``"triton"`` runs the
one-pass kernel of :mod:`complement.ops.triton_loss`, which writes ``G`` over the
chunk's logits in place; ``"auto"`` picks Triton for CUDA tensors (not float64) when
``triton`` imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._validation import (
    check_choice,
    check_num_classes,
    check_reduction,
    check_targets,
    flatten_logits,
    reduce_rows,
    split_ignored,
)
from ._kernels import kernel_mode
from .complement_entropy import complement_backward_kernel, complement_forward_kernel
from .joint import joint_backward_kernel, joint_forward_kernel

DEFAULT_MEMORY_BUDGET = 512 * 2**20
BACKENDS = ("auto", "torch", "triton")
COMPLEMENT_TERMS = ("entropy", "guided")

# Bytes per logit of one chunk beyond the logits themselves, measured on CPU: the
# compiled row math adds the gradient and little else; eager ops hold ~7 float32
# temporaries of the chunk's size at their peak. The Triton kernel adds nothing.
TORCH_TEMPORARY_BYTES = {"compiled": 8, "eager": 32}


# ---------------------------------------------------------------- row math per chunk


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are computed (and accumulated) in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class TorchRows:
    """Per-chunk row math in torch: ``forward`` gives ``(outputs, saved stats)``.

    CE alone also runs the joint row math (its complement part is cheap once compiled,
    and it keeps one chunk-sized temporary where ``F.cross_entropy``'s autograd keeps three)."""

    @staticmethod
    def forward(terms: str, logits: Tensor, target: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        if terms == "complement":
            c, entropy = complement_forward_kernel(logits, target, numel=logits.numel())
            return [entropy], [c, entropy]
        ce, entropy, lse, c = joint_forward_kernel(logits, target, numel=logits.numel())
        return ([ce] if terms == "ce" else [ce, entropy]), [lse, c, entropy]

    @staticmethod
    def backward(terms: str, logits: Tensor, target: Tensor, stats: list[Tensor], grad_ce, grad_entropy) -> Tensor:
        numel = logits.numel()
        c, entropy = stats[-2:]
        if grad_ce is None:
            return complement_backward_kernel(logits, target, c, entropy, grad_entropy, numel=numel)
        if grad_entropy is None:
            grad_entropy = torch.zeros_like(grad_ce)
        return joint_backward_kernel(logits, target, stats[0], c, entropy, grad_ce, grad_entropy, numel=numel)


class TritonRows:
    """Per-chunk row math in the Triton kernel; the gradient overwrites the logits."""

    @staticmethod
    def forward(terms: str, logits: Tensor, target: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        from .triton_loss import loss_rows

        ce, entropy = loss_rows(logits, target, ce=terms != "complement", complement=terms != "ce")
        return [t for t in (ce, entropy) if t is not None], []

    @staticmethod
    def backward(terms: str, logits: Tensor, target: Tensor, stats: list[Tensor], grad_ce, grad_entropy) -> Tensor:
        from .triton_loss import loss_rows

        loss_rows(
            logits,
            target,
            ce=grad_ce is not None,
            complement=grad_entropy is not None,
            grad_ce=grad_ce,
            grad_entropy=grad_entropy,
        )
        return logits


def _loss_and_grad(rows_impl, terms: str, logits: Tensor, target: Tensor, row_loss, with_grad: bool):
    """``sum(row_loss(terms))`` of one chunk and its gradient wrt the chunk's logits.

    The per-row terms come first; autograd on those short vectors gives ``dloss/dterm``
    per row (e.g. GCE's weighting), which the row backward turns into the gradient."""
    outputs, stats = rows_impl.forward(terms, logits, target)
    with torch.enable_grad():
        outputs = [o.detach().requires_grad_(with_grad) for o in outputs]
        loss = row_loss(*outputs).sum()
        coefficients = torch.autograd.grad(loss, outputs) if with_grad else None
    if not with_grad:
        return loss.detach(), None
    grad_ce, grad_entropy = _split_grads(terms, coefficients)
    return loss.detach(), rows_impl.backward(terms, logits, target, stats, grad_ce, grad_entropy)


# ---------------------------------------------------------------- chunk loop


def _chunks(hidden: Tensor, weight: Tensor, bias: Tensor | None, chunk_rows: int):
    """Yield ``(rows, hidden[rows], logits of those rows)``; the logits live in one reused buffer."""
    num_rows = hidden.shape[0]
    # Reusing one buffer spares an allocation (and, on CPU, fresh page faults) per chunk.
    buffer = hidden.new_empty(min(chunk_rows, num_rows), weight.shape[0])
    for start in range(0, num_rows, chunk_rows):
        rows = slice(start, min(start + chunk_rows, num_rows))
        h = hidden[rows]
        logits = buffer[: h.shape[0]]
        if bias is None:
            torch.mm(h, weight.t(), out=logits)
        else:
            torch.addmm(bias, h, weight.t(), out=logits)
        yield rows, h, logits


class _Gradients:
    """Accumulates ``dh = G W``, ``dW = sum G^T h`` and ``db = sum G`` over chunks."""

    def __init__(self, hidden: Tensor, weight: Tensor, bias: Tensor | None, needs: Sequence[bool]):
        # Half-precision weights: accumulate over chunks in float32, round once at the end.
        self.dtype = compute_dtype(weight.dtype)
        self.weight, self.bias = weight, bias
        self.grad_hidden = torch.empty_like(hidden) if needs[0] else None
        self.grad_weight = torch.zeros(weight.shape, dtype=self.dtype, device=weight.device) if needs[1] else None
        self.grad_bias = torch.zeros(weight.shape[0], dtype=self.dtype, device=weight.device) if needs[2] else None

    def add(self, rows: slice, h: Tensor, grad_logits: Tensor) -> None:
        if self.grad_hidden is not None:
            torch.mm(grad_logits, self.weight, out=self.grad_hidden[rows])
        if self.grad_weight is not None:
            if self.dtype == self.weight.dtype:
                self.grad_weight.addmm_(grad_logits.t(), h)
            else:
                self.grad_weight += torch.mm(grad_logits.t(), h)
        if self.grad_bias is not None:
            self.grad_bias += grad_logits.sum(0, dtype=self.dtype)

    def result(self, scale: Tensor | None = None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        grads = []
        pairs = ((self.grad_hidden, self.weight), (self.grad_weight, self.weight), (self.grad_bias, self.bias))
        for grad, like in pairs:
            if grad is not None:
                grad = grad if scale is None else grad * scale.to(grad.dtype)
                grad = grad.to(like.dtype)
            grads.append(grad)
        return tuple(grads)


def _split_grads(terms: str, grads: Sequence[Tensor | None]) -> tuple[Tensor | None, Tensor | None]:
    if terms == "ce":
        return grads[0], None
    if terms == "complement":
        return None, grads[0]
    return grads[0], grads[1]


# ---------------------------------------------------------------- autograd Functions


class ChunkedLinearRowsFunction(torch.autograd.Function):
    """Per-row losses of ``F.linear(hidden, weight, bias)``; the backward recomputes each chunk.

    Returns ``CE`` rows for ``terms="ce"``, ``H`` rows for ``"complement"``, and
    ``(CE, H)`` for ``"joint"``. ``target`` must hold valid class indices. When all
    rows fit in one chunk (and ``with_grad``), the logits are kept for the backward
    instead of recomputed: the budget allows them, and it saves a matrix product."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, terms: str, chunk_rows: int, rows_impl, with_grad: bool):
        num_outputs = 2 if terms == "joint" else 1
        num_stats = (2 if terms == "complement" else 3) if rows_impl is TorchRows else 0
        fields = [
            torch.empty(hidden.shape[0], dtype=compute_dtype(hidden.dtype), device=hidden.device)
            for _ in range(num_outputs + num_stats)
        ]
        ctx.logits = None
        for rows, _, logits in _chunks(hidden, weight, bias, chunk_rows):
            outputs, stats = rows_impl.forward(terms, logits, target[rows])
            for field, value in zip(fields, outputs + stats):
                field[rows] = value
            if with_grad and rows.stop - rows.start == hidden.shape[0]:
                ctx.logits = logits
        ctx.set_materialize_grads(False)  # an unused output (e.g. CE in COT's step 2) gets None: skip its math
        ctx.terms, ctx.chunk_rows, ctx.rows_impl = terms, chunk_rows, rows_impl
        ctx.save_for_backward(hidden, weight, bias, target, *fields[num_outputs:])
        return tuple(fields[:num_outputs]) if num_outputs > 1 else fields[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        hidden, weight, bias, target, *stats = ctx.saved_tensors
        grad_ce, grad_entropy = _split_grads(ctx.terms, grads)
        if grad_ce is None and grad_entropy is None:
            return (None,) * 8
        gradients = _Gradients(hidden, weight, bias, ctx.needs_input_grad[:3])
        chunks = _chunks(hidden, weight, bias, ctx.chunk_rows)
        if ctx.logits is not None:
            # Released here, so a second backward (retain_graph) recomputes instead of
            # reading logits that the Triton kernel has overwritten with gradients.
            chunks, ctx.logits = [(slice(0, hidden.shape[0]), hidden, ctx.logits)], None
        for rows, h, logits in chunks:
            grad_logits = ctx.rows_impl.backward(
                ctx.terms,
                logits,
                target[rows],
                [s[rows] for s in stats],
                None if grad_ce is None else grad_ce[rows],
                None if grad_entropy is None else grad_entropy[rows],
            )
            gradients.add(rows, h, grad_logits)
        return (*gradients.result(), None, None, None, None, None)


class ChunkedLinearScalarFunction(torch.autograd.Function):
    """``sum_i row_loss(CE_i[, H_i])`` of ``F.linear(hidden, weight, bias)``, gradients computed in the forward.

    ``row_loss`` maps the per-row terms (``(CE,)``, ``(H,)`` or ``(CE, H)`` for ``terms``
    ``"ce"``, ``"complement"``, ``"joint"``) to per-row losses, reduction weights
    included; each chunk's ``G`` follows from its statistics (see ``_loss_and_grad``),
    and the backward scales the stored gradients by the upstream scalar.
    ``with_grad=False`` (no grad mode, or no input needing it) skips all gradient work."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, terms: str, chunk_rows: int, rows_impl, row_loss, with_grad: bool):
        needs = [with_grad and need for need in ctx.needs_input_grad[:3]]
        gradients = _Gradients(hidden, weight, bias, needs) if any(needs) else None
        total = torch.zeros((), dtype=compute_dtype(hidden.dtype), device=hidden.device)
        for rows, h, logits in _chunks(hidden, weight, bias, chunk_rows):
            loss, grad_logits = _loss_and_grad(rows_impl, terms, logits, target[rows], row_loss, gradients is not None)
            total += loss
            if gradients is not None:
                gradients.add(rows, h, grad_logits)
        ctx.gradients = gradients
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total):
        if ctx.gradients is None:
            return (None,) * 9
        grads = ctx.gradients.result(scale=grad_total)
        return (*grads, None, None, None, None, None, None)


# ---------------------------------------------------------------- argument handling


def _check_linear(hidden, weight, bias, target, loss_name: str) -> tuple[Tensor, Tensor, torch.Size]:
    """Check the output layer's shapes and dtypes; return ``(hidden (N, H), target (N,), target shape)``."""
    for name, value in (("hidden", hidden), ("weight", weight), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{loss_name} expects {name} to be a tensor; got {type(value).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{loss_name} expects bias to be a tensor or None; got {type(bias).__name__}")
    if not hidden.is_floating_point():
        raise TypeError(f"{loss_name} expects floating-point hidden states; got dtype {hidden.dtype}")
    if hidden.dim() < 1:
        raise ValueError(f"{loss_name} expects hidden states of shape (N, H) or (..., H); got a scalar")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"{loss_name}: weight must have shape (V, H) = (num_classes, {hidden.shape[-1]}) to match hidden states "
            f"of shape {tuple(hidden.shape)}; got weight of shape {tuple(weight.shape)} "
            "(pass the output layer's weight as stored by nn.Linear, not its transpose)"
        )
    if weight.dtype != hidden.dtype:
        raise TypeError(f"{loss_name}: weight dtype {weight.dtype} differs from hidden dtype {hidden.dtype}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0] or bias.dtype != weight.dtype):
        raise ValueError(
            f"{loss_name}: bias must have shape ({weight.shape[0]},) and dtype {weight.dtype}; "
            f"got shape {tuple(bias.shape)} and dtype {bias.dtype}"
        )
    devices = {t.device for t in (hidden, weight, target, bias) if t is not None}
    if len(devices) > 1:
        raise ValueError(
            f"{loss_name}: hidden, weight, bias and target must be on one device; got {sorted(map(str, devices))}"
        )
    if tuple(target.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"{loss_name}: target shape {tuple(target.shape)} does not match hidden states of shape "
            f"{tuple(hidden.shape)}; expected {tuple(hidden.shape[:-1])} (the hidden shape without its last dimension)"
        )
    # Reuse the package's target checks (integer dtype, message about soft targets) on the
    # flattened rows; the hidden states play the logits' role there only for shapes.
    flat_hidden, flat_target, _ = flatten_logits(hidden.reshape(-1, hidden.shape[-1]), target.reshape(-1), loss_name)
    return flat_hidden, flat_target, target.shape


def _use_triton(backend: str, hidden: Tensor) -> bool:
    check_choice("backend", backend, BACKENDS)
    # "auto" imports triton only for CUDA tensors: CPU runs never pay for (or need) it.
    if backend == "torch" or (backend == "auto" and not (hidden.is_cuda and hidden.dtype != torch.float64)):
        return False
    try:
        from . import triton_loss
    except ImportError:
        if backend == "triton":
            raise ImportError("backend='triton' needs the triton package (pip install triton)") from None
        return False
    if backend == "auto":
        return True
    if hidden.dtype == torch.float64:
        raise TypeError("backend='triton' computes in float32; use backend='torch' for float64 inputs")
    if not triton_loss.can_run_on(hidden.device):
        raise RuntimeError(
            f"backend='triton' runs on CUDA tensors (or on CPU tensors in a process started with "
            f"TRITON_INTERPRET=1); got {hidden.device}"
        )
    return True


def _row_math_mode() -> str:
    eager = kernel_mode() == "eager" or joint_backward_kernel._failed or complement_backward_kernel._failed
    return "eager" if eager else "compiled"


def chunk_rows_for_budget(
    num_classes: int, dtype: torch.dtype, memory_budget_bytes: int, triton: bool = False, mode: str | None = None
) -> int:
    """Rows per chunk so that one chunk's logits and row-math temporaries fit the budget.

    ``mode`` is ``"compiled"`` or ``"eager"`` torch row math (default: what will run)."""
    extra = 0 if triton else TORCH_TEMPORARY_BYTES[mode or _row_math_mode()]
    per_logit = torch.empty((), dtype=dtype).element_size() + extra
    return max(1, int(memory_budget_bytes) // (num_classes * per_logit))


def _chunk_rows(chunk_size, memory_budget_bytes, num_classes: int, dtype, triton: bool) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of rows or None; got {chunk_size!r}")
        return chunk_size
    if isinstance(memory_budget_bytes, bool) or not isinstance(memory_budget_bytes, int) or memory_budget_bytes < 1:
        raise ValueError(f"memory_budget_bytes must be a positive integer; got {memory_budget_bytes!r}")
    return chunk_rows_for_budget(num_classes, dtype, memory_budget_bytes, triton)


class _Prepared(NamedTuple):
    hidden: Tensor  # (M, H): the kept rows only
    target: Tensor  # (M,): their targets
    kept: Tensor  # (N,) bool over all rows
    all_kept: bool
    target_shape: torch.Size
    num_classes: int
    chunk_rows: int
    rows_impl: type


def _prepare(
    hidden, weight, target, bias, ignore_index, reduction, chunk_size, memory_budget_bytes, backend, loss_name
) -> _Prepared:
    """Validate; drop ignored rows (they cost no matrix product); pick chunk rows and backend."""
    check_reduction(reduction)
    flat_hidden, flat_target, target_shape = _check_linear(hidden, weight, bias, target, loss_name)
    num_classes = weight.shape[0]
    check_num_classes(num_classes, loss_name)
    check_targets(flat_target, num_classes, ignore_index, loss_name)
    triton = _use_triton(backend, flat_hidden)
    chunk_rows = _chunk_rows(chunk_size, memory_budget_bytes, num_classes, flat_hidden.dtype, triton)
    kept, safe_target = split_ignored(flat_target, ignore_index)
    all_kept = bool(kept.all())
    if not all_kept:
        flat_hidden, safe_target = flat_hidden[kept], safe_target[kept]
    return _Prepared(
        flat_hidden.contiguous(),
        safe_target,
        kept,
        all_kept,
        target_shape,
        num_classes,
        chunk_rows,
        TritonRows if triton else TorchRows,
    )


def _with_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _rows(prep: _Prepared, weight, bias, terms: str) -> tuple[Tensor, ...]:
    """Per-row outputs over all rows (ignored rows hold 0), through the recomputing Function."""
    outputs = ChunkedLinearRowsFunction.apply(
        prep.hidden,
        weight,
        bias,
        prep.target,
        terms,
        prep.chunk_rows,
        prep.rows_impl,
        _with_grad(prep.hidden, weight, bias),
    )
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    if not prep.all_kept:
        outputs = tuple(o.new_zeros(prep.kept.shape).masked_scatter(prep.kept, o) for o in outputs)
    return outputs


def _scalar(prep: _Prepared, weight, bias, terms: str, row_loss, reduction: str) -> Tensor:
    """``reduction`` of ``row_loss`` over kept rows, through the Function that computes gradients in the forward."""
    # As reduce_rows: the mean is over kept rows, and 0 (zero gradient) when none is kept.
    scale = 1.0 / max(prep.hidden.shape[0], 1) if reduction == "mean" else 1.0
    return ChunkedLinearScalarFunction.apply(
        prep.hidden,
        weight,
        bias,
        prep.target,
        terms,
        prep.chunk_rows,
        prep.rows_impl,
        lambda *rows: row_loss(*rows) * scale,
        _with_grad(prep.hidden, weight, bias),
    )


# The losses package imports complement.ops, so the two helpers below import from it on
# use; a module-level import here (complement.ops imports this module) would be circular.


def _normalizer(normalization: str, num_classes: int) -> float:
    from ..losses.complement_entropy import normalizer

    return normalizer(normalization, num_classes)


def _complement_rows(ce_rows, entropy_rows, complement, alpha, normalization, num_classes) -> Tensor:
    scale = -1.0 / _normalizer(normalization, num_classes)
    if complement == "guided":
        return (-alpha * ce_rows).exp() * entropy_rows * scale  # p_g ** alpha * H, since CE = -log p_g
    return entropy_rows * scale


def _check_complement(complement: str, alpha: float, normalization: str | None) -> str:
    from ..losses.complement_entropy import NORMALIZATIONS
    from ..losses.guided_complement_entropy import _check_alpha

    check_choice("complement", complement, COMPLEMENT_TERMS)
    if complement == "guided":
        _check_alpha(alpha)
    if normalization is None:  # each loss's own default: the authors' K for COT, log K for GCE
        normalization = "log_classes" if complement == "guided" else "classes"
    check_choice("normalization", normalization, NORMALIZATIONS)
    return normalization


def _single_term(prep: _Prepared, weight, bias, terms: str, row_loss, reduction: str) -> Tensor:
    """One loss: gradients in the forward for mean/sum; per-row outputs for ``"none"``."""
    if reduction != "none":
        return _scalar(prep, weight, bias, terms, row_loss, reduction)
    return reduce_rows(row_loss(*_rows(prep, weight, bias, terms)), prep.kept, reduction, prep.target_shape)


# ---------------------------------------------------------------- public functions


def linear_cross_entropy_and_complement(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str | None = None,
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    *,
    complement: str = "entropy",
    alpha: float = 0.333,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    """``(cross_entropy, complement_loss)`` of the logits ``hidden @ weight.T + bias``, chunked.

    Equal to :func:`complement.cross_entropy_and_complement_entropy` on the explicit
    logits (or, with ``complement="guided"``, CE and :func:`complement.guided_complement_entropy`),
    without materializing them.

    Args:
        hidden: ``(N, H)`` or ``(..., H)`` hidden states.
        weight: ``(V, H)`` output-layer weight (``nn.Linear(H, V).weight``).
        target: ``(N,)`` or ``(...)`` class indices.
        bias: optional ``(V,)`` output-layer bias.
        ignore_index: target value that does not count.
        reduction: ``"mean"`` over kept targets, ``"sum"`` or ``"none"``.
        normalization: divisor of the complement term (see :func:`complement.complement_entropy`);
            ``None`` means ``"classes"`` for COT and ``"log_classes"`` for GCE.
        chunk_size: rows per chunk; ``None`` derives it from ``memory_budget_bytes``.
        memory_budget_bytes: bytes one chunk's logits and temporaries may take.
        complement: ``"entropy"`` (COT, ``-H / Z``) or ``"guided"`` (GCE, ``-p_g^alpha H / Z``).
        alpha: GCE's exponent.
        backend: ``"auto"``, ``"torch"`` or ``"triton"`` (see the module docstring).
    """
    normalization = _check_complement(complement, alpha, normalization)
    prep = _prepare(
        hidden,
        weight,
        target,
        bias,
        ignore_index,
        reduction,
        chunk_size,
        memory_budget_bytes,
        backend,
        "linear_cross_entropy_and_complement",
    )
    ce_rows, entropy_rows = _rows(prep, weight, bias, "joint")
    complement_rows = _complement_rows(ce_rows, entropy_rows, complement, alpha, normalization, prep.num_classes)
    return (
        reduce_rows(ce_rows, prep.kept, reduction, prep.target_shape),
        reduce_rows(complement_rows, prep.kept, reduction, prep.target_shape),
    )


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    *,
    backend: str = "auto",
) -> Tensor:
    """Cross-entropy of ``hidden @ weight.T + bias`` only (COT's first step), chunked.

    Equal to ``F.cross_entropy`` on the explicit logits (in float32 for half inputs;
    0 when every target is ignored). Arguments as in :func:`linear_cross_entropy_and_complement`."""
    prep = _prepare(
        hidden,
        weight,
        target,
        bias,
        ignore_index,
        reduction,
        chunk_size,
        memory_budget_bytes,
        backend,
        "linear_cross_entropy",
    )
    return _single_term(prep, weight, bias, "ce", lambda ce: ce, reduction)


def linear_complement_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "classes",
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    *,
    backend: str = "auto",
) -> Tensor:
    """COT's complement loss ``-H / Z`` of ``hidden @ weight.T + bias`` only (its second step), chunked.

    Equal to :func:`complement.complement_entropy` on the explicit logits. Arguments
    as in :func:`linear_cross_entropy_and_complement`."""
    normalization = _check_complement("entropy", 0.0, normalization)
    prep = _prepare(
        hidden,
        weight,
        target,
        bias,
        ignore_index,
        reduction,
        chunk_size,
        memory_budget_bytes,
        backend,
        "linear_complement_entropy",
    )
    scale = -1.0 / _normalizer(normalization, prep.num_classes)
    return _single_term(prep, weight, bias, "complement", lambda entropy: entropy * scale, reduction)


def linear_guided_complement_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    bias: Tensor | None = None,
    alpha: float = 0.333,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "log_classes",
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    *,
    backend: str = "auto",
) -> Tensor:
    """Guided complement entropy ``-p_g^alpha H / Z`` of ``hidden @ weight.T + bias``, chunked.

    Equal to :func:`complement.guided_complement_entropy` on the explicit logits.
    Arguments as in :func:`linear_cross_entropy_and_complement`."""
    normalization = _check_complement("guided", alpha, normalization)
    prep = _prepare(
        hidden,
        weight,
        target,
        bias,
        ignore_index,
        reduction,
        chunk_size,
        memory_budget_bytes,
        backend,
        "linear_guided_complement_entropy",
    )

    def guided(ce_rows, entropy_rows):
        return _complement_rows(ce_rows, entropy_rows, "guided", alpha, normalization, prep.num_classes)

    return _single_term(prep, weight, bias, "joint", guided, reduction)
