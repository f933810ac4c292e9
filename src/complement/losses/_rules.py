"""The loss family's argument rules: normalizations, hyper-parameters, class weights and counts.

Each loss, its Module twin and its chunked twin apply these, so one argument gets one rule
and one message. The complement entropy's normalizations (:func:`normalizer`) are here too;
the metrics (a layer above) use them for the normalized complement entropy.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .._validation import check_choice, check_number, is_compiling

NORMALIZATIONS = ("classes", "complement_classes", "log_classes", "max_entropy", "none")


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


def check_num_classes(num_classes: int, loss_name: str, minimum: int = 2) -> None:
    if num_classes < minimum:
        raise ValueError(
            f"{loss_name} needs at least {minimum} classes (logits dimension 1); got {num_classes}. "
            "With a single class there is no complement to spread probability over."
        )


def check_num_classes_arg(num_classes: Any, owner: str) -> None:
    """A loss Module's optional ``num_classes``: ``None`` or an integer >= 2."""
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"{owner}: num_classes must be an integer >= 2 or None; got {num_classes!r}")
    check_num_classes(num_classes, owner)


def check_class_count(num_classes: int | None, input: Tensor, loss_name: str) -> None:
    """A Module built with ``num_classes`` refuses logits with another class count."""
    actual = input.shape[0] if input.dim() == 1 else input.shape[1] if input.dim() >= 2 else None
    if num_classes is not None and actual is not None and actual != num_classes:
        raise ValueError(
            f"{loss_name} was built with num_classes={num_classes}, but the logits have {actual} classes "
            f"(shape {tuple(input.shape)}); the label set does not match the model's output layer."
        )


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
    if not is_compiling() and not bool(((weight >= 0) & torch.isfinite(weight)).all()):
        raise ValueError(f"{loss_name}: class weights must be finite and >= 0; got {weight.tolist()}")
