"""Output layer + cross-entropy + complement entropy, chunked so the N x V logits never exist.

This is the ops layer of the large-vocabulary losses: the autograd Functions, the chunk
loop and the choice of backend and chunk size. The public functions, their argument
checks and Module twins are in :mod:`complement.losses.linear`.

For hidden states ``h`` (N, H), an output layer ``W`` (V, H) with bias ``b`` (V,) and
targets ``g``::

    z_i    = W h_i + b                                   (one row of V logits)
    CE_i   = lse(z_i) - z_ig
    H_i    = -sum_{j != g} q_ij log q_ij,   q_ij = exp(z_ij - lse_{k != g} z_ik)

and with ``G = dLoss/dz`` for a block of rows (the row math of :mod:`complement.ops.joint`)::

    dLoss/dh = G W,     dLoss/dW = sum_blocks G^T h,     dLoss/db = sum_rows G

How: logits are computed ``chunk_rows`` rows at a time into one reused buffer, and
each chunk is dropped before the next. Peak extra memory is ``O(chunk_rows x V)``
plus the gradients themselves (N x H, V x H), never N x V. Two strategies:

- One scalar loss (:func:`chunked_sum`; COT's alternate steps and GCE): the gradients
  are computed in the forward, chunk by chunk, as Liger-Kernel does (3 matrix
  products), so they occupy memory from the forward on; the backward only scales them.
- Per-row outputs (:func:`chunked_rows`; two outputs, or ``reduction="none"``): the
  upstream gradient of each output is not known in the forward, so the forward
  keeps a few numbers per row (``lse``, the complement ``lse``, ``H``) and the
  backward recomputes each chunk's logits (4 matrix products) and applies the exact
  upstream per-row gradients, whatever the outputs were combined into. When all rows
  fit in one chunk, the forward's logits are kept instead (3 products).

float16/bfloat16 inputs: logits and ``G`` are in the input dtype (as an unfused model
computes them), the row math runs in float32, per-row losses are float32, and the
weight/bias gradients accumulate in float32 before being returned in the input dtype.

Backends: ``"torch"`` runs the row math of :mod:`complement.ops.joint` /
:mod:`complement.ops.complement_entropy` on each chunk (compiled by Inductor for large
chunks); ``"triton"`` runs the one-pass kernel of :mod:`complement.ops.triton_loss`,
which writes ``G`` over the chunk's logits in place. ``"auto"`` picks ``"torch"`` on
every device: the Triton kernel has passed its tests only under Triton's CPU
interpreter, not yet on a GPU, so it is an explicit opt-in (``backend="triton"``)
until ``scripts/gpu_check.sh`` has run it on real hardware.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._validation import check_choice
from ._kernels import kernel_mode
from .complement_entropy import complement_backward_kernel, complement_forward_kernel
from .joint import joint_backward_kernel, joint_forward_kernel

DEFAULT_MEMORY_BUDGET = 512 * 2**20
BACKENDS = ("auto", "torch", "triton")

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
        if not with_grad:
            return loss.detach(), None
        coefficients = torch.autograd.grad(loss, outputs)
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
        def finish(grad: Tensor | None, dtype: torch.dtype) -> Tensor | None:
            if grad is None:
                return None
            return (grad if scale is None else grad * scale.to(grad.dtype)).to(dtype)

        # The bias gradient exists only when there is a bias, so it takes the weight's dtype (checked equal).
        return (
            finish(self.grad_hidden, self.weight.dtype),
            finish(self.grad_weight, self.weight.dtype),
            finish(self.grad_bias, self.weight.dtype),
        )


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


# ---------------------------------------------------------------- backend and chunk size


def row_backend(backend: str, hidden: Tensor) -> type:
    """The per-chunk row math for ``backend``: :class:`TritonRows` or :class:`TorchRows`."""
    return TritonRows if _use_triton(backend, hidden) else TorchRows


def _use_triton(backend: str, hidden: Tensor) -> bool:
    check_choice("backend", backend, BACKENDS)
    # "auto" means torch until the Triton kernel has passed the CUDA tests on hardware
    # (module docstring); CPU runs never import triton.
    if backend != "triton":
        return False
    try:
        from . import triton_loss
    except ImportError:
        raise ImportError("backend='triton' needs the triton package (pip install triton)") from None
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


def chunk_rows(chunk_size, memory_budget_bytes, num_classes: int, dtype, triton: bool) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of rows or None; got {chunk_size!r}")
        return chunk_size
    if isinstance(memory_budget_bytes, bool) or not isinstance(memory_budget_bytes, int) or memory_budget_bytes < 1:
        raise ValueError(f"memory_budget_bytes must be a positive integer; got {memory_budget_bytes!r}")
    return chunk_rows_for_budget(num_classes, dtype, memory_budget_bytes, triton)


# ---------------------------------------------------------------- entry points of the loss layer


def _with_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def chunked_rows(hidden, weight, bias, target, terms: str, rows: int, rows_impl: type) -> tuple[Tensor, ...]:
    """Per-row ``CE`` / ``H`` / ``(CE, H)`` of ``F.linear(hidden, weight, bias)`` (valid targets only)."""
    outputs = ChunkedLinearRowsFunction.apply(
        hidden, weight, bias, target, terms, rows, rows_impl, _with_grad(hidden, weight, bias)
    )
    return outputs if isinstance(outputs, tuple) else (outputs,)


def chunked_sum(hidden, weight, bias, target, terms: str, rows: int, rows_impl: type, row_loss) -> Tensor:
    """``sum_i row_loss(terms_i)`` of ``F.linear(hidden, weight, bias)``, gradients computed in the forward."""
    return ChunkedLinearScalarFunction.apply(
        hidden, weight, bias, target, terms, rows, rows_impl, row_loss, _with_grad(hidden, weight, bias)
    )
