"""The base layer: the argument checks every layer uses, and the one row check of ``(logits, target)``.

Every other layer may import this module; it imports nothing of the package.

:func:`flatten_rows` checks logits (or hidden states) and their class-index targets and
flattens them to rows ``(M, C)`` and ``(M,)``; the losses, their chunked twins, the metrics
and the training objective all call it, so a bad input gets the same message everywhere.
:func:`check_targets` is the label range rule they share. The losses' own rules (reductions,
normalizations, hyper-parameters, class weights) live in :mod:`complement.losses._rules`
and :mod:`complement.losses._rows`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

INDEX_DTYPES = (torch.int64, torch.int32)
"""The target dtypes the loss kernels take (``F.cross_entropy``'s int64, and int32)."""


def check_choice(name: str, value: str, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")


def check_number(name: str, value: Any, minimum: float | None = None, hint: str = "") -> None:
    """``value`` is a finite real number (not a bool or a tensor), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}{hint}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be a finite number{bound}; got {value}{hint}")


def check_ignore_index(ignore_index: Any) -> None:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"ignore_index must be an integer; got {ignore_index!r}. Use the default -100 when no target "
            "should be ignored (a class index never equals it)."
        )


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing: data-dependent checks are skipped then."""
    return torch.compiler.is_compiling()


def _dtype_names(dtypes: tuple[torch.dtype, ...]) -> str:
    names = [str(dtype).removeprefix("torch.") for dtype in dtypes]
    return names[0] + "".join(f" (or {name})" for name in names[1:])


def flatten_rows(
    logits: Any,
    target: Any,
    *,
    who: str,
    class_last: bool = True,
    name: str = "logits",
    width: str = "C",
    index_dtypes: tuple[torch.dtype, ...] | None = None,
) -> tuple[Tensor, Tensor, torch.Size]:
    """Check ``(logits, target)`` and flatten them to rows: ``(logits (M, C), target (M,), target shape)``.

    Args:
        logits: floating-point logits, or any rows of width ``C`` (the chunked losses' hidden states).
        target: integer class indices, of the logits' shape without the class dimension.
            Probability (soft) targets are refused: each row has one target class.
        who: the caller's name, which every message starts with.
        class_last: the classes are the last dimension, ``(..., C)`` with targets ``(...)``;
            ``False``: dimension 1, as ``F.cross_entropy`` takes them, ``(N, C, d1, ...)`` with
            ``(N, d1, ...)`` (moved last, which copies them once). Either way ``(C,)`` with a
            scalar target is one row.
        name, width: what the logits are called in messages, and the letter of their last dimension.
        index_dtypes: the accepted target dtypes; ``None`` accepts any integer dtype. The rows
            keep the target's dtype (callers that need int64 convert).

    The rows are views where the layout allows (no copy for class-last or ``(N, C)`` logits);
    empty batches give empty rows. The label range is :func:`check_targets`'s, apart because
    it reads the targets (a host sync) and some callers skip or defer it.
    """
    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError(
            f"{who} expects {name} and target as tensors; got {type(logits).__name__} and {type(target).__name__}"
        )
    if not logits.is_floating_point():
        raise TypeError(f"{who} expects floating-point {name}; got dtype {logits.dtype}")
    if logits.dim() == 0:
        layouts = f"(..., {width})" if class_last else f"(N, {width}, d1, ...)"
        raise ValueError(f"{who} expects {name} of shape ({width},), (N, {width}) or {layouts}; got a scalar")
    class_dim = logits.dim() - 1 if class_last else min(1, logits.dim() - 1)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"{who} expects integer class indices as target; got dtype {target.dtype}. Probability (soft) targets "
            "are not supported: each row has one target class (the complement is defined by it). Convert one-hot "
            f"targets with target.argmax({-1 if class_last else class_dim})."
        )
    if index_dtypes is not None and target.dtype not in index_dtypes:
        raise TypeError(
            f"{who} expects class indices of dtype {_dtype_names(index_dtypes)}; got {target.dtype}. "
            "Convert with target.long()."
        )
    if logits.device != target.device:
        raise ValueError(f"{who}: {name} are on {logits.device} and target on {target.device}; move them to one device")
    shape = tuple(logits.shape)
    expected = shape[:class_dim] + shape[class_dim + 1 :]
    if tuple(target.shape) != expected:
        without = "its last dimension" if class_last else f"dimension {class_dim}"
        layout = (
            f"Pass class-last {name} (..., {width}) with targets (...), e.g. (N, {width}) with (N,) or "
            f"(N, L, {width}) with (N, L)."
            if class_last
            else f"Pass {name} (N, {width}, d1, ...) with targets (N, d1, ...); for (N, L, {width}) {name}, pass "
            f"{name}.transpose(1, 2), or {name}.reshape(-1, {width}) with target.reshape(-1)."
        )
        raise ValueError(
            f"{who}: {name} of shape {shape} and target of shape {tuple(target.shape)} do not fit; expected target "
            f"shape {expected}, the {name}' shape without {without}. {layout}"
        )
    num_classes = shape[class_dim]
    if logits.dim() == 1:  # unbatched (C,) with a scalar target: one row
        rows = logits.unsqueeze(0)
    elif logits.dim() == 2:
        rows = logits
    else:
        rows = (logits if class_last else logits.movedim(1, -1)).reshape(target.numel(), num_classes)
    return rows, target.reshape(-1), target.shape


def check_targets(target: Tensor, num_classes: int, ignore_index: int | None, who: str) -> bool:
    """Raise if a target is outside ``[0, C)`` and is not ``ignore_index`` (``None``: none is ignored).

    Returns whether some target may equal ``ignore_index`` (``False`` only when the
    range check proves none does), so callers can skip the masking. Under
    ``torch.compile`` the check is skipped (a data-dependent check would break the graph)."""
    if is_compiling():
        return True
    if target.numel() == 0:
        return False
    low, high = torch.stack(torch.aminmax(target)).tolist()  # one host sync for the common case
    if low >= 0 and high < num_classes:
        return ignore_index is not None and low <= ignore_index <= high
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        value = int(target[bad][0])
        raise ValueError(
            f"{who}: target contains class index {value}, outside the valid range [0, {num_classes - 1}] "
            f"for logits with {num_classes} classes (ignore_index={ignore_index}). Check that the label set "
            "matches the model's number of classes, and mark padding with ignore_index."
        )
    return True
