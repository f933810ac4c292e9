"""The threat model: perturbations of at most ε per pixel (L∞) on images in ``[0, 1]``.

The standard of the robustness literature for MNIST (ε = 0.1, 0.2, 0.3) and CIFAR-10
(ε = 8/255): ε is in pixel units, so a task's normalization belongs inside the attacked
model (:class:`~complement.robustness.pixels.Normalized`), never before the attack.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import check_number

PIXEL_RANGE = (0.0, 1.0)


def check_eps(eps: Any) -> float:
    """``eps`` is an L∞ radius in pixel units: a number in ``[0, 1]``."""
    check_number("eps", eps, hint=" (an L∞ radius in pixels of [0, 1] images, e.g. 0.3 for MNIST, 8/255 for CIFAR-10)")
    if not 0 <= eps <= 1:
        raise ValueError(
            f"eps must be in [0, 1] (an L∞ radius in pixels of [0, 1] images: 0.3 for MNIST, 8/255 = 0.0314 for "
            f"CIFAR-10); got {eps}"
        )
    return float(eps)


def check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (attack iterations, e.g. 10 or 20); got {steps!r}")
    return steps


def check_pixels(x: Tensor) -> None:
    """Attacked inputs are pixels in ``[0, 1]``: normalized inputs would make ε mean another thing."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"attacked inputs must be a floating-point tensor of pixels in [0, 1]; got {type(x).__name__}")
    if x.numel() and (bool(x.min() < PIXEL_RANGE[0]) or bool(x.max() > PIXEL_RANGE[1])):
        raise ValueError(
            f"attacked inputs must be pixels in [0, 1]; got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]. "
            "Attack the model in pixel space: undo the normalization of the inputs and put it inside the model "
            "with complement.robustness.Normalized(model, mean, std)."
        )


def check_logits(logits: Any, batch: int) -> Tensor:
    """The attacked model's output: one row of logits per input."""
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"the attacked model must return a tensor of logits (N, C); got {type(logits).__name__}. Wrap a model "
            "that returns a tuple or a dict, e.g. lambda x: model(x)[0] or lambda x: model(x).logits"
        )
    if logits.dim() != 2 or logits.shape[0] != batch:
        raise ValueError(
            f"the attacked model must return logits (N, C) for N = {batch} inputs; got {tuple(logits.shape)}"
        )
    return logits


def as_float(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
