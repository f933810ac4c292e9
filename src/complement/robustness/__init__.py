"""Adversarial robustness: L∞ attacks in pixel space and robust accuracy.

- :mod:`.threat`: the threat model (L∞ on ``[0, 1]`` pixels) and its checks;
- :mod:`.attacks`: FGSM and PGD in plain torch, with the cross-entropy, DLR and margin
  losses (the inner maximization of adversarial training uses them too);
- :mod:`.pixels`: :class:`Normalized`, a model that takes pixels and normalizes inside,
  so that ε means the same for every task.
"""

from .attacks import ATTACK_LOSSES, fgsm, pgd
from .pixels import Normalized
from .threat import check_eps, check_steps

__all__ = ["ATTACK_LOSSES", "Normalized", "check_eps", "check_steps", "fgsm", "pgd"]
