"""Adversarial robustness: L∞ attacks in pixel space and robust accuracy.

- :mod:`.threat`: the threat model (L∞ on ``[0, 1]`` pixels) and its checks;
- :mod:`.attacks`: FGSM and PGD in plain torch, with the cross-entropy, DLR and margin
  losses (the inner maximization of adversarial training uses them too);
- :mod:`.pixels`: :class:`Normalized`, a model that takes pixels and normalizes inside,
  so that ε means the same for every task;
- :mod:`.evaluate`: robust accuracy under FGSM, PGD (CE and DLR), Square and AutoAttack
  (the last two from the Adversarial Robustness Toolbox), the per-example worst case, and
  the checks that tell robustness from gradient masking.
"""

from .attacks import ATTACK_LOSSES, fgsm, pgd
from .evaluate import ATTACKS, MaskingCheck, RobustAccuracy, masking_checks, robust_accuracy
from .pixels import Normalized
from .threat import check_eps, check_steps

__all__ = [
    "ATTACKS",
    "ATTACK_LOSSES",
    "MaskingCheck",
    "Normalized",
    "RobustAccuracy",
    "check_eps",
    "check_steps",
    "fgsm",
    "masking_checks",
    "pgd",
    "robust_accuracy",
]
