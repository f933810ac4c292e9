"""FGSM and PGD under the L∞ threat model, in plain torch.

FGSM (Goodfellow et al., ICLR 2015): ``x' = clip(x + ε sign(∇_x L(f(x), y)))``.
PGD (Madry et al., ICLR 2018): from a uniform random start in the ε-ball (or ``x``),
``steps`` times ``x' ← Π_{B∞(x, ε) ∩ [0, 1]}(x' + α sign(∇_{x'} L(f(x'), y)))``.

The attack loss ``L`` is per example and is *maximized*:

- ``"ce"``: cross-entropy, the usual choice;
- ``"dlr"``: the difference of logits ratio of Croce and Hein (ICML 2020, AutoAttack),
  ``-(z_y - max_{i≠y} z_i) / (z_π1 - z_π3)``, invariant to shifting and scaling the logits,
  so it does not fail where a loss flattens or saturates the softmax;
- ``"margin"``: Carlini and Wagner's margin ``max_{i≠y} z_i - z_y``;
- or a callable ``(logits, target) -> per-example loss`` (TRADES' KL to the clean output).

These are what adversarial training's inner maximization runs (inside the COT step), and
the reference that the evaluation library is checked against. Only the input gets
gradients: the model's parameters are left as they were (``torch.autograd.grad``).
The model's mode (train or eval) is the caller's: evaluate in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_number
from ..ops.complement_entropy import upcast
from .threat import PIXEL_RANGE, check_eps, check_logits, check_pixels, check_steps

AttackLoss = Callable[[Tensor, Tensor], Tensor]


def _cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(upcast(logits), target, reduction="none")


def _margin(logits: Tensor, target: Tensor) -> Tensor:
    logits = upcast(logits)
    true = logits.gather(1, target[:, None])[:, 0]
    other = logits.scatter(1, target[:, None], float("-inf")).amax(1)
    return other - true


def _dlr(logits: Tensor, target: Tensor) -> Tensor:
    if logits.shape[1] < 3:
        raise ValueError("the DLR loss needs at least 3 classes (it divides by z_π1 - z_π3); use loss='margin'")
    ordered = upcast(logits).sort(dim=1, descending=True).values
    return _margin(logits, target) / (ordered[:, 0] - ordered[:, 2] + 1e-12)


ATTACK_LOSSES: dict[str, AttackLoss] = {"ce": _cross_entropy, "dlr": _dlr, "margin": _margin}


def _attack_loss(loss: str | AttackLoss) -> AttackLoss:
    if callable(loss):
        return loss
    if loss not in ATTACK_LOSSES:
        raise ValueError(f"unknown attack loss {loss!r}; choose from {sorted(ATTACK_LOSSES)} or pass a callable")
    return ATTACK_LOSSES[loss]


def _gradient_sign(model: Callable[[Tensor], Any], x: Tensor, target: Tensor, loss: AttackLoss) -> Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        value = loss(check_logits(model(x), x.shape[0]), target)
        (gradient,) = torch.autograd.grad(value.sum(), x)
    return gradient.sign()


def fgsm(
    model: Callable[[Tensor], Any], x: Tensor, target: Tensor, eps: float, *, loss: str | AttackLoss = "ce"
) -> Tensor:
    """One signed-gradient step of size ``eps`` from ``x`` (pixels in [0, 1]), clipped to [0, 1]."""
    eps = check_eps(eps)
    check_pixels(x)
    step = _gradient_sign(model, x, target, _attack_loss(loss))
    return (x + eps * step).clamp(*PIXEL_RANGE).detach()


def pgd(
    model: Callable[[Tensor], Any],
    x: Tensor,
    target: Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    loss: str | AttackLoss = "ce",
    generator: torch.Generator | None = None,
    start: Tensor | None = None,
) -> Tensor:
    """Projected gradient ascent of ``loss`` in the L∞ ball of radius ``eps`` around ``x``.

    ``step_size`` defaults to ``2.5 ε / steps`` (Madry et al.'s rule, so the steps can cross
    the ball); ``random_start`` draws the start uniformly in the ball (from ``generator``);
    ``start`` gives the first iterate instead (projected into the ball; TRADES starts at
    ``x + 0.001 N(0, 1)``)."""
    eps, steps = check_eps(eps), check_steps(steps)
    alpha = 2.5 * eps / steps if step_size is None else step_size
    check_number("step_size", alpha, minimum=0.0)
    check_pixels(x)
    attack_loss = _attack_loss(loss)
    x = x.detach()
    low, high = (x - eps).clamp(min=PIXEL_RANGE[0]), (x + eps).clamp(max=PIXEL_RANGE[1])
    adversarial = x
    if start is not None:
        adversarial = torch.max(torch.min(start.detach(), high), low)
    elif random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        adversarial = torch.max(torch.min(x + eps * noise, high), low)
    for _ in range(steps):
        step = _gradient_sign(model, adversarial, target, attack_loss)
        adversarial = torch.max(torch.min(adversarial + alpha * step, high), low).detach()
    return adversarial
