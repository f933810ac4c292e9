"""The large-vocabulary losses: output layer + loss, chunked so the N x V logits never exist.

Each function takes the hidden states ``h`` (``(N, H)`` or ``(..., H)``), the output
layer's ``weight`` (V, H) and ``bias`` (V,) and the targets, and equals the loss of the
same name on the explicit logits ``h @ W.T + b``::

    linear_cross_entropy                  F.cross_entropy                    (COT's step 1)
    linear_complement_entropy             complement.complement_entropy      (COT's step 2)
    linear_guided_complement_entropy      complement.guided_complement_entropy
    linear_cross_entropy_and_complement   both of a pair from one pass       (the joint mode)

with the same reductions, ``ignore_index`` and all-ignored batches giving 0 with zero
gradient. The Module twins (:class:`LinearCrossEntropy`, :class:`LinearComplementEntropy`,
:class:`LinearGuidedComplementEntropy`) take the same arguments as the loss Modules they
twin, so the registry can offer each as that loss's *chunked twin*.

Ignored rows are dropped before the matrix products, so padding costs nothing. How the
chunks, memory budget and backends work is in :mod:`complement.ops.chunked_linear`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .._validation import INDEX_DTYPES, check_choice, check_ignore_index, check_targets, flatten_rows
from ..ops.chunked_linear import (
    DEFAULT_MEMORY_BUDGET,
    TritonRows,
    chunk_rows,
    chunked_rows,
    chunked_sum,
    row_backend,
)
from ._rows import check_reduction, reduce_rows, split_ignored
from ._rules import NORMALIZATIONS, check_alpha, check_num_classes, check_num_classes_arg, normalizer

COMPLEMENT_TERMS = ("entropy", "guided")


# ---------------------------------------------------------------- argument handling


def _check_linear(hidden, weight, bias, target, loss_name: str) -> tuple[Tensor, Tensor, torch.Size]:
    """Check the output layer's shapes and dtypes; return ``(hidden (N, H), target (N,), target shape)``.

    The hidden states and targets get the package's row check (:func:`flatten_rows`, class-last:
    the hidden states play the logits' role there, for shapes and target dtypes)."""
    flat_hidden, flat_target, target_shape = flatten_rows(
        hidden, target, who=loss_name, name="hidden states", width="H", index_dtypes=INDEX_DTYPES
    )
    if not isinstance(weight, Tensor):
        raise TypeError(f"{loss_name} expects weight to be a tensor; got {type(weight).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{loss_name} expects bias to be a tensor or None; got {type(bias).__name__}")
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
    return flat_hidden, flat_target.long(), target_shape


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
    hidden, weight, target, bias, ignore_index, reduction, chunk_size, memory_budget_bytes, backend, loss_name,
    validate=True,
) -> _Prepared:  # fmt: skip
    """Validate; drop ignored rows (they cost no matrix product); pick chunk rows and backend."""
    check_reduction(reduction)
    check_ignore_index(ignore_index)
    flat_hidden, flat_target, target_shape = _check_linear(hidden, weight, bias, target, loss_name)
    num_classes = weight.shape[0]
    check_num_classes(num_classes, loss_name)
    if validate:
        check_targets(flat_target, num_classes, ignore_index, loss_name)
    rows_impl = row_backend(backend, flat_hidden)
    rows = chunk_rows(chunk_size, memory_budget_bytes, num_classes, flat_hidden.dtype, rows_impl is TritonRows)
    kept, safe_target = split_ignored(flat_target, ignore_index)
    assert kept is not None  # split_ignored always masks unless told nothing can be ignored
    all_kept = bool(kept.all())
    if not all_kept:
        flat_hidden, safe_target = flat_hidden[kept], safe_target[kept]
    return _Prepared(flat_hidden.contiguous(), safe_target, kept, all_kept, target_shape, num_classes, rows, rows_impl)


def _rows(prep: _Prepared, weight, bias, terms: str) -> tuple[Tensor, ...]:
    """Per-row outputs over all rows (ignored rows hold 0), through the recomputing Function."""
    outputs = chunked_rows(prep.hidden, weight, bias, prep.target, terms, prep.chunk_rows, prep.rows_impl)
    if not prep.all_kept:
        outputs = tuple(o.new_zeros(prep.kept.shape).masked_scatter(prep.kept, o) for o in outputs)
    return outputs


def _scalar(prep: _Prepared, weight, bias, terms: str, row_loss, reduction: str) -> Tensor:
    """``reduction`` of ``row_loss`` over kept rows, through the Function that computes gradients in the forward."""
    # As reduce_rows: the mean is over kept rows, and 0 (zero gradient) when none is kept.
    scale = 1.0 / max(prep.hidden.shape[0], 1) if reduction == "mean" else 1.0
    return chunked_sum(
        prep.hidden, weight, bias, prep.target, terms, prep.chunk_rows, prep.rows_impl,
        lambda *rows: row_loss(*rows) * scale,
    )  # fmt: skip


def _complement_rows(ce_rows, entropy_rows, complement, alpha, normalization, num_classes) -> Tensor:
    scale = -1.0 / normalizer(normalization, num_classes)
    if complement == "guided":
        return (-alpha * ce_rows).exp() * entropy_rows * scale  # p_g ** alpha * H, since CE = -log p_g
    return entropy_rows * scale


def _check_complement(complement: str, alpha: float, normalization: str | None) -> str:
    check_choice("complement", complement, COMPLEMENT_TERMS)
    if complement == "guided":
        check_alpha(alpha)
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
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str | None = None,
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    complement: str = "entropy",
    alpha: float = 0.333,
    backend: str = "auto",
    validate: bool = True,
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
    chunking = (chunk_size, memory_budget_bytes, backend)
    prep = _prepare(
        hidden,
        weight,
        target,
        bias,
        ignore_index,
        reduction,
        *chunking,
        "linear_cross_entropy_and_complement",
        validate,
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
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    backend: str = "auto",
    validate: bool = True,
) -> Tensor:
    """Cross-entropy of ``hidden @ weight.T + bias`` only (COT's first step), chunked.

    Equal to ``F.cross_entropy`` on the explicit logits (in float32 for half inputs;
    0 when every target is ignored). Arguments as in :func:`linear_cross_entropy_and_complement`."""
    chunking = (chunk_size, memory_budget_bytes, backend)
    prep = _prepare(hidden, weight, target, bias, ignore_index, reduction, *chunking, "linear_cross_entropy", validate)
    return _single_term(prep, weight, bias, "ce", lambda ce: ce, reduction)


def linear_complement_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    bias: Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "classes",
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    backend: str = "auto",
    validate: bool = True,
) -> Tensor:
    """COT's complement loss ``-H / Z`` of ``hidden @ weight.T + bias`` only (its second step), chunked.

    Equal to :func:`complement.complement_entropy` on the explicit logits. Arguments
    as in :func:`linear_cross_entropy_and_complement`."""
    normalization = _check_complement("entropy", 0.0, normalization)
    chunking = (chunk_size, memory_budget_bytes, backend)
    prep = _prepare(
        hidden, weight, target, bias, ignore_index, reduction, *chunking, "linear_complement_entropy", validate
    )
    scale = -1.0 / normalizer(normalization, prep.num_classes)
    return _single_term(prep, weight, bias, "complement", lambda entropy: entropy * scale, reduction)


def linear_guided_complement_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    bias: Tensor | None = None,
    *,
    alpha: float = 0.333,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "log_classes",
    chunk_size: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    backend: str = "auto",
    validate: bool = True,
) -> Tensor:
    """Guided complement entropy ``-p_g^alpha H / Z`` of ``hidden @ weight.T + bias``, chunked.

    Equal to :func:`complement.guided_complement_entropy` on the explicit logits.
    Arguments as in :func:`linear_cross_entropy_and_complement`."""
    normalization = _check_complement("guided", alpha, normalization)
    chunking = (chunk_size, memory_budget_bytes, backend)
    prep = _prepare(
        hidden, weight, target, bias, ignore_index, reduction, *chunking, "linear_guided_complement_entropy", validate
    )

    def guided(ce_rows, entropy_rows):
        return _complement_rows(ce_rows, entropy_rows, "guided", alpha, normalization, prep.num_classes)

    return _single_term(prep, weight, bias, "joint", guided, reduction)


# ---------------------------------------------------------------- Module twins


class _ChunkedLoss(nn.Module):
    """Shared arguments of the chunked twins: the class count check and the keyword options
    (``ignore_index``, ``reduction``, chunking, ``validate``) passed on to the function."""

    def __init__(self, num_classes: int | None, **options: Any):
        super().__init__()
        check_num_classes_arg(num_classes, type(self).__name__)
        check_ignore_index(options["ignore_index"])
        check_reduction(options["reduction"])
        self.num_classes = num_classes
        self.options = options

    def _check_classes(self, weight: Tensor) -> None:
        if self.num_classes is not None and isinstance(weight, Tensor) and weight.shape[0] != self.num_classes:
            raise ValueError(
                f"{type(self).__name__} was built with num_classes={self.num_classes}, but the output layer has "
                f"{weight.shape[0]} rows (weight of shape {tuple(weight.shape)})"
            )

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if k in ("reduction", "normalization", "alpha")}
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class LinearCrossEntropy(_ChunkedLoss):
    """Module twin of :func:`linear_cross_entropy`; the chunked twin of ``nn.CrossEntropyLoss``."""

    def __init__(
        self,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        chunk_size: int | None = None,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
        backend: str = "auto",
        validate: bool = True,
    ):
        super().__init__(
            None, ignore_index=ignore_index, reduction=reduction, chunk_size=chunk_size,
            memory_budget_bytes=memory_budget_bytes, backend=backend, validate=validate,
        )  # fmt: skip

    def forward(self, hidden: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None = None) -> Tensor:
        return linear_cross_entropy(hidden, weight, target, bias, **self.options)


class LinearComplementEntropy(_ChunkedLoss):
    """Module twin of :func:`linear_complement_entropy`; the chunked twin of
    :class:`~complement.ComplementEntropy`, with the same arguments."""

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        normalization: str = "classes",
        chunk_size: int | None = None,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
        backend: str = "auto",
        validate: bool = True,
    ):
        super().__init__(
            num_classes, ignore_index=ignore_index, reduction=reduction, chunk_size=chunk_size,
            memory_budget_bytes=memory_budget_bytes, backend=backend, validate=validate,
            normalization=_check_complement("entropy", 0.0, normalization),
        )  # fmt: skip

    def forward(self, hidden: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None = None) -> Tensor:
        self._check_classes(weight)
        return linear_complement_entropy(hidden, weight, target, bias, **self.options)

    def with_cross_entropy(
        self, hidden: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(cross_entropy, this loss)`` from one pass over the chunks."""
        self._check_classes(weight)
        return linear_cross_entropy_and_complement(hidden, weight, target, bias, **self.options)

    def normalized_entropy(self, loss: Tensor, num_classes: int) -> Tensor:
        """The mean ``H(q) / log(K - 1)`` in ``[0, 1]`` (1: a flat complement) behind a ``mean`` loss value."""
        return -loss * (normalizer(self.options["normalization"], num_classes) / normalizer("max_entropy", num_classes))

    @property
    def reduction(self) -> str:
        return str(self.options["reduction"])


class LinearGuidedComplementEntropy(_ChunkedLoss):
    """Module twin of :func:`linear_guided_complement_entropy`; the chunked twin of
    :class:`~complement.GuidedComplementEntropy`, with the same arguments."""

    def __init__(
        self,
        alpha: float = 0.333,
        *,
        num_classes: int | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        normalization: str = "log_classes",
        chunk_size: int | None = None,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
        backend: str = "auto",
        validate: bool = True,
    ):
        super().__init__(
            num_classes, ignore_index=ignore_index, reduction=reduction, chunk_size=chunk_size,
            memory_budget_bytes=memory_budget_bytes, backend=backend, validate=validate,
            normalization=_check_complement("guided", alpha, normalization), alpha=alpha,
        )  # fmt: skip

    def forward(self, hidden: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None = None) -> Tensor:
        self._check_classes(weight)
        return linear_guided_complement_entropy(hidden, weight, target, bias, **self.options)

    def with_cross_entropy(
        self, hidden: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(cross_entropy, this loss)`` from one pass over the chunks."""
        self._check_classes(weight)
        return linear_cross_entropy_and_complement(hidden, weight, target, bias, complement="guided", **self.options)
