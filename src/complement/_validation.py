"""The base layer: argument checks, shape rules and the loss family's shared rules.

Every other layer may import this module; it imports nothing of the package.

The conventions are those of ``torch.nn.functional.cross_entropy``: logits of
shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)`` with integer targets of shape
``()``, ``(N,)`` or ``(N, d1, ...)``; ``ignore_index`` marks targets that do not
count; ``reduction`` is ``"mean"`` (over kept targets), ``"sum"`` or ``"none"``.

The complement entropy's normalizations (:func:`normalizer`) and the checks of each
loss's hyper-parameters live here too, so the losses, their chunked twins and the
metrics apply one rule each.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")
NORMALIZATIONS = ("classes", "complement_classes", "log_classes", "max_entropy", "none")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")


def _is_compiling() -> bool:
    return torch.compiler.is_compiling()


def flatten_logits(input: Tensor, target: Tensor, loss_name: str) -> tuple[Tensor, Tensor, torch.Size]:
    """Check shapes and dtypes; return ``(logits (M, C), target (M,), target_shape)``.

    ``(N, C, d1, ...)`` logits are moved to ``(N * d1 * ..., C)``, which copies them
    once (as any row-wise kernel must); pass ``(M, C)`` logits to avoid the copy.
    """
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{loss_name} expects tensors; got {type(input).__name__} and {type(target).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"{loss_name} expects floating-point logits; got dtype {input.dtype}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"{loss_name} expects integer class indices as target; got dtype {target.dtype}. "
            "Probability (soft) targets are not supported: the complement is defined by one target "
            "class. Convert with target.argmax(1) if your targets are one-hot."
        )
    if input.dim() == 0:
        raise ValueError(f"{loss_name} expects logits of shape (C,), (N, C) or (N, C, d1, ...); got a scalar")
    if input.dim() == 1:  # unbatched (C,) with a scalar target
        if target.dim() != 0:
            raise ValueError(
                f"{loss_name}: unbatched logits of shape {tuple(input.shape)} need a scalar target; "
                f"got target of shape {tuple(target.shape)}"
            )
        return input.unsqueeze(0), target.reshape(1), target.shape
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{loss_name}: target shape {tuple(target.shape)} does not match logits shape {tuple(input.shape)}; "
            f"expected target shape {expected} (the logits' shape without the class dimension 1). "
            "For (N, L, C) logits, pass logits.transpose(1, 2) or logits.reshape(-1, C) with target.reshape(-1)."
        )
    num_classes = input.shape[1]
    if input.dim() > 2:
        input = input.movedim(1, -1).reshape(-1, num_classes)
    return input, target.reshape(-1), target.shape


def check_num_classes(num_classes: int, loss_name: str, minimum: int = 2) -> None:
    if num_classes < minimum:
        raise ValueError(
            f"{loss_name} needs at least {minimum} classes (logits dimension 1); got {num_classes}. "
            "With a single class there is no complement to spread probability over."
        )


def check_targets(target: Tensor, num_classes: int, ignore_index: int, loss_name: str) -> bool:
    """Raise if a target is outside ``[0, C)`` and is not ``ignore_index``.

    Returns whether some target may equal ``ignore_index`` (``False`` only when the
    range check proves none does), so callers can skip the masking. Under
    ``torch.compile`` the check is skipped (a data-dependent check would break the graph)."""
    if _is_compiling():
        return True
    if target.numel() == 0:
        return False
    low, high = torch.stack(torch.aminmax(target)).tolist()  # one host sync for the common case
    if low >= 0 and high < num_classes:
        return low <= ignore_index <= high
    bad = ((target < 0) | (target >= num_classes)) & (target != ignore_index)
    if bool(bad.any()):
        value = int(target[bad][0])
        raise ValueError(
            f"{loss_name}: target contains class index {value}, outside the valid range [0, {num_classes - 1}] "
            f"for logits with {num_classes} classes (ignore_index={ignore_index}). Check that the label set "
            "matches the model's number of classes, and mark padding with ignore_index."
        )
    return True


def split_ignored(target: Tensor, ignore_index: int, may_ignore: bool = True) -> tuple[Tensor | None, Tensor]:
    """Return ``(kept mask, target with ignored entries replaced by class 0)``.

    The mask is ``None`` (every row kept) when ``may_ignore`` is ``False``."""
    if not may_ignore:
        return None, target
    kept = target != ignore_index
    return kept, torch.where(kept, target, torch.zeros_like(target))


def reduction_factor(kept: Tensor | None, reduction: str, rows: int) -> float | None:
    """The factor that makes ``factor * sum(rows)`` the reduced loss, so an op can reduce
    inside itself: ``1 / N`` for ``mean`` (0 rows give 0), 1 for ``sum``. ``None`` when
    the rows themselves are needed: ``reduction="none"``, or some target may be ignored."""
    if kept is not None or reduction == "none":
        return None
    return 1.0 / max(rows, 1) if reduction == "mean" else 1.0


def reduce_rows(per_row: Tensor, kept: Tensor | None, reduction: str, target_shape: torch.Size) -> Tensor:
    """Reduce per-row losses; ignored rows count as 0 and are left out of the mean.

    ``kept=None`` means every row counts. ``mean`` over zero kept rows is 0 (with zero
    gradient), not NaN."""
    if kept is None:
        if reduction == "none":
            return per_row.reshape(target_shape)
        return per_row.sum() if reduction == "sum" or per_row.numel() == 0 else per_row.mean()
    per_row = torch.where(kept, per_row, torch.zeros_like(per_row))
    if reduction == "none":
        return per_row.reshape(target_shape)
    total = per_row.sum()
    if reduction == "sum":
        return total
    return total / kept.sum().clamp(min=1).to(total.dtype)


# ---------------------------------------------------------------- the loss family's rules


def normalizer(normalization: str, num_classes: int) -> float:
    """The divisor ``Z`` of the complement entropy for ``num_classes`` classes
    (see :mod:`complement.losses.complement_entropy` for the table)."""
    check_choice("normalization", normalization, NORMALIZATIONS)
    k = num_classes
    return {
        "classes": float(k),
        "complement_classes": float(k - 1),
        "log_classes": math.log(k),
        "max_entropy": math.log(k - 1) if k > 2 else 1.0,  # H is identically 0 when K = 2
        "none": 1.0,
    }[normalization]


def check_alpha(alpha: float) -> None:
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0 (the exponent of the guiding factor p_g ** alpha); got {alpha}")


def check_gamma(gamma: float) -> None:
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0 (the focusing exponent); got {gamma}")


def check_balancing_factor(balancing_factor: float) -> None:
    if not balancing_factor >= 0:
        raise ValueError(
            f"balancing_factor must be >= 0; got {balancing_factor}. The complement term is "
            "-balancing_factor * H / (K - 1), which raises complement entropy for a non-negative "
            "factor; a negative one would lower it (the sign bug of some public versions)."
        )


def check_class_count(num_classes: int | None, input: Tensor, loss_name: str) -> None:
    """A Module built with ``num_classes`` refuses logits with another class count."""
    actual = input.shape[0] if input.dim() == 1 else input.shape[1] if input.dim() >= 2 else None
    if num_classes is not None and actual is not None and actual != num_classes:
        raise ValueError(
            f"{loss_name} was built with num_classes={num_classes}, but the logits have {actual} classes "
            f"(shape {tuple(input.shape)}); the label set does not match the model's output layer."
        )


class Prepared(NamedTuple):
    """Logits ``(M, K)``, targets with ignored entries replaced by 0, the kept mask (``None``:
    every row kept) and the target's shape, for ``reduction="none"``."""

    logits: Tensor
    target: Tensor
    kept: Tensor | None
    target_shape: torch.Size


def prepare(input: Tensor, target: Tensor, ignore_index: int, reduction: str, loss_name: str) -> Prepared:
    """Validate a loss's logits, targets and reduction; flatten them to rows."""
    check_reduction(reduction)
    logits, flat_target, target_shape = flatten_logits(input, target, loss_name)
    check_num_classes(logits.shape[1], loss_name)
    may_ignore = check_targets(flat_target, logits.shape[1], ignore_index, loss_name)
    kept, safe_target = split_ignored(flat_target, ignore_index, may_ignore)
    return Prepared(logits, safe_target, kept, target_shape)
