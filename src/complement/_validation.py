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
from typing import Any, NamedTuple

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")
NORMALIZATIONS = ("classes", "complement_classes", "log_classes", "max_entropy", "none")


INDEX_DTYPES = (torch.int64, torch.int32)


def check_reduction(reduction: str) -> None:
    check_choice("reduction", reduction, REDUCTIONS)


def check_choice(name: str, value: str, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")


def check_int(name: str, value: Any, minimum: int | None = None) -> None:
    """``value`` is a plain integer (not a bool, float or tensor), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


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


def check_num_classes_arg(num_classes: Any, owner: str) -> None:
    """A loss Module's optional ``num_classes``: ``None`` or an integer >= 2."""
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"{owner}: num_classes must be an integer >= 2 or None; got {num_classes!r}")
    check_num_classes(num_classes, owner)


def check_class_weight(weight: Any, num_classes: int, loss_name: str) -> None:
    """Per-class weights as ``F.cross_entropy`` takes them: ``None`` or a float tensor ``(C,)``, >= 0."""
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(
            f"{loss_name}: weight must be a float tensor of {num_classes} per-class weights or None; "
            f"got {type(weight).__name__}"
        )
    if not weight.is_floating_point() or tuple(weight.shape) != (num_classes,):
        raise ValueError(
            f"{loss_name}: weight must be a float tensor of shape ({num_classes},), one weight per class; "
            f"got shape {tuple(weight.shape)} and dtype {weight.dtype}"
        )
    if not _is_compiling() and not bool(((weight >= 0) & torch.isfinite(weight)).all()):
        raise ValueError(f"{loss_name}: class weights must be finite and >= 0; got {weight.tolist()}")


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
    if target.dtype not in INDEX_DTYPES:
        raise TypeError(
            f"{loss_name} expects class indices of dtype int64 (or int32); got {target.dtype}. "
            "Convert with target.long()."
        )
    if input.device != target.device:
        raise ValueError(
            f"{loss_name}: logits are on {input.device} and target on {target.device}; move them to one device"
        )
    if input.dim() == 0:
        raise ValueError(f"{loss_name} expects logits of shape (C,), (N, C) or (N, C, d1, ...); got a scalar")
    if input.dim() == 1:  # unbatched (C,) with a scalar target
        if target.dim() != 0:
            raise ValueError(
                f"{loss_name}: unbatched logits of shape {tuple(input.shape)} need a scalar target; "
                f"got target of shape {tuple(target.shape)}"
            )
        return input.unsqueeze(0), target.reshape(1).long(), target.shape
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
    return input, target.reshape(-1).long(), target.shape


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


def reduce_weighted_rows(
    per_row: Tensor, target: Tensor, weight: Tensor, kept: Tensor | None, reduction: str, target_shape: torch.Size
) -> Tensor:
    """``F.cross_entropy``'s class weighting: each row's loss times its target class's weight;
    ``mean`` divides by the summed weights of the kept rows (0 when they sum to 0)."""
    row_weight = weight.to(per_row.dtype)[target]
    if kept is not None:
        row_weight = row_weight * kept.to(per_row.dtype)
    per_row = per_row * row_weight
    if kept is not None:  # an ignored row holds 0, even where its loss is not finite
        per_row = torch.where(kept, per_row, torch.zeros_like(per_row))
    if reduction == "none":
        return per_row.reshape(target_shape)
    if reduction == "sum":
        return per_row.sum()
    return per_row.sum() / row_weight.sum().clamp(min=torch.finfo(per_row.dtype).tiny)


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
    check_number("alpha", alpha, hint=" (the exponent of the guiding factor p_g ** alpha)")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0 (the exponent of the guiding factor p_g ** alpha); got {alpha}")


def check_gamma(gamma: float) -> None:
    hint = " (the focusing exponent; pass per-class weights as weight=...)"
    check_number("gamma", gamma, hint=hint)
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0 (the focusing exponent); got {gamma}")


def check_balancing_factor(balancing_factor: float) -> None:
    check_number("balancing_factor", balancing_factor, hint=" (pass per-class weights as weight=...)")
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


def prepare(
    input: Tensor, target: Tensor, ignore_index: int, reduction: str, loss_name: str, validate: bool = True
) -> Prepared:
    """Validate a loss's logits, targets and reduction; flatten them to rows.

    ``validate=False`` skips the target range check, the one check that reads the
    targets (a host sync per call); out-of-range targets then give undefined results."""
    check_reduction(reduction)
    check_ignore_index(ignore_index)
    logits, flat_target, target_shape = flatten_logits(input, target, loss_name)
    check_num_classes(logits.shape[1], loss_name)
    may_ignore = check_targets(flat_target, logits.shape[1], ignore_index, loss_name) if validate else True
    kept, safe_target = split_ignored(flat_target, ignore_index, may_ignore)
    return Prepared(logits, safe_target, kept, target_shape)
