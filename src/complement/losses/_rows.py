"""The losses' rows: validation and flattening of a loss's inputs, ignored targets, reductions.

The conventions are those of ``torch.nn.functional.cross_entropy``: logits of
shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)`` with integer targets of shape
``()``, ``(N,)`` or ``(N, d1, ...)``; ``ignore_index`` marks targets that do not
count; ``reduction`` is ``"mean"`` (over kept targets), ``"sum"`` or ``"none"``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._validation import INDEX_DTYPES, check_choice, check_ignore_index, check_targets, flatten_rows
from ._rules import check_num_classes

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    check_choice("reduction", reduction, REDUCTIONS)


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

    ``(N, C, d1, ...)`` logits are moved to ``(N * d1 * ..., C)``, which copies them
    once (as any row-wise kernel must); pass ``(M, C)`` logits to avoid the copy.
    ``validate=False`` skips the target range check, the one check that reads the
    targets (a host sync per call); out-of-range targets then give undefined results."""
    check_reduction(reduction)
    check_ignore_index(ignore_index)
    logits, flat_target, target_shape = flatten_rows(
        input, target, who=loss_name, class_last=False, index_dtypes=INDEX_DTYPES
    )
    flat_target = flat_target.long()
    check_num_classes(logits.shape[1], loss_name)
    may_ignore = check_targets(flat_target, logits.shape[1], ignore_index, loss_name) if validate else True
    kept, safe_target = split_ignored(flat_target, ignore_index, may_ignore)
    return Prepared(logits, safe_target, kept, target_shape)


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
