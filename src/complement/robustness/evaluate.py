"""Robust accuracy of a model under attacks, with the checks that tell robustness from gradient masking.

:func:`robust_accuracy` attacks every batch of a loader with each attack at each ε and counts
the examples still classified correctly. Attacks by name:

==============  =================================================================
``fgsm``        one signed-gradient step (:func:`~.attacks.fgsm`)
``pgd``         PGD on cross-entropy, random start (``steps``, step ``2.5 ε / steps``)
``pgd_dlr``     the same on the DLR margin loss (Croce and Hein, 2020): scale-invariant
``square``      Square (Andriushchenko et al., 2020), black-box: no gradients (ART)
``autoattack``  ART's AutoAttack on APGD-CE, APGD-DLR and Square, one restart each
==============  =================================================================

The last two come from the Adversarial Robustness Toolbox 1.20 (the ``robust`` extra); the
first three are :mod:`.attacks`, checked against hand-written references and against ART's
PGD. ART's ``AutoAttack`` is not Croce and Hein's standard version (no APGD-T, no FAB-T; its
default list adds DeepFool and five restarts each, 1.6 h per 1,000 MNIST images on 2 CPU
cores): it is run here on the three attacks above, one restart each (about 16 min per 1,000
at ε = 0.1 on that machine), and reported under that name.

A loss that flattens the wrong classes, as COT's does, is exactly the kind that can weaken
gradient attacks without making the model robust (Athalye et al., ICML 2018), so
:func:`masking_checks` reads the results the way Carlini et al. ("On Evaluating Adversarial
Robustness", 2019) advise:

- at a large ε (``eps=1``: any image) accuracy must fall to about 0;
- PGD must never be weaker than FGSM (more, smaller steps of the same ascent);
- the margin loss (``pgd_dlr``) must not find much more than cross-entropy does;
- the black-box ``square`` must not find much more than the gradient attacks.

A failed check is a finding to report next to the number, not an error: on a small honest
MLP the margin loss already finds 8 points more than cross-entropy at ε = 0.3 (CE's softmax
saturates), which says CE-only PGD overstates robustness. So the number to read is the
**worst case** (``attack="worst"``): an example counts as robust at an ε only if it
survives every attack run there, as AutoAttack counts.

The model is put in eval mode for the attacks (and put back as it was).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .attacks import fgsm, pgd
from .threat import check_eps, check_logits, check_steps

TORCH_ATTACKS = ("fgsm", "pgd", "pgd_dlr")
ART_ATTACKS = ("square", "autoattack")
ATTACKS = TORCH_ATTACKS + ART_ATTACKS
MASKING_EPS = 1.0  # "any image": a model that still classifies here has gradients that mislead the attack
TOLERANCE = 0.02  # accuracy (as a fraction) of slack in the checks: one attack's randomness
WORST = "worst"  # the per-example worst case over the attacks at one eps


def check_attacks(attacks: Any) -> tuple[str, ...]:
    if isinstance(attacks, str) or not isinstance(attacks, (list, tuple)) or not attacks:
        raise ValueError(f"attacks must be a non-empty list of names from {list(ATTACKS)}; got {attacks!r}")
    unknown = [name for name in attacks if name not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {unknown}; choose from {list(ATTACKS)}")
    return tuple(attacks)


def _attack(name: str, model: Callable[[Tensor], Any], x: Tensor, y: Tensor, eps: float, steps: int,
            generator: torch.Generator) -> Tensor:  # fmt: skip
    if name == "fgsm":
        return fgsm(model, x, y, eps)
    if name in ("pgd", "pgd_dlr"):
        return pgd(model, x, y, eps, steps=steps, loss="dlr" if name == "pgd_dlr" else "ce", generator=generator)
    return _art_attack(name, model, x, y, eps, int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))


SQUARE_QUERIES = 1000  # Square's iterations per restart (ART's default 5000 is 5x slower for little more here)


def _art_attack(name: str, model: Any, x: Tensor, y: Tensor, eps: float, seed: int) -> Tensor:
    """Square or AutoAttack from the Adversarial Robustness Toolbox, on this batch.

    ART draws from numpy's and Python's global generators: they are seeded here, so a run
    repeats (and the caller's own draws are not disturbed more than by any ART call)."""
    try:
        import random

        import numpy as np
        from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack
        from art.estimators.classification import PyTorchClassifier
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"the {name!r} attack comes from the Adversarial Robustness Toolbox: "
            'pip install "complement[robust]" (ART 1.20 also needs packaging and multiprocess, which it does not '
            "declare; the extra brings them)"
        ) from None
    random.seed(seed)
    np.random.seed(seed)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the {name!r} attack needs the model as a torch.nn.Module; got {type(model).__name__}")
    with torch.no_grad():
        classes = check_logits(model(x[:1]), 1).shape[1]
    classifier = PyTorchClassifier(
        model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=classes,
        clip_values=(0.0, 1.0), device_type="gpu" if x.is_cuda else "cpu",
    )  # fmt: skip
    square = SquareAttack(estimator=classifier, norm=np.inf, eps=eps, max_iter=SQUARE_QUERIES, nb_restarts=1,
                          batch_size=len(x), verbose=False)  # fmt: skip
    attack: Any = square
    if name == "autoattack":
        apgd = [AutoProjectedGradientDescent(estimator=classifier, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=100,
                                             nb_random_init=1, batch_size=len(x), loss_type=loss, verbose=False)
                for loss in ("cross_entropy", "difference_logits_ratio")]  # fmt: skip
        attack = AutoAttack(estimator=classifier, norm=np.inf, eps=eps, eps_step=2 * eps, attacks=[*apgd, square],
                            batch_size=len(x))  # fmt: skip
    adversarial = attack.generate(x=x.detach().cpu().numpy().astype(np.float32), y=y.cpu().numpy())
    return torch.from_numpy(adversarial).to(x.device, x.dtype)


@dataclass(frozen=True)
class RobustAccuracy:
    """Accuracy under ``attack`` at ``eps`` (``attack`` is ``"clean"`` for ``eps`` 0, no attack)."""

    attack: str
    eps: float
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def robust_accuracy(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    eps: Sequence[float],
    attacks: Sequence[str] = ("fgsm", "pgd"),
    *,
    steps: int = 20,
    seed: int = 0,
    masking_check: bool = True,
) -> list[RobustAccuracy]:
    """Clean accuracy and each attack's accuracy at each ``eps`` on ``batches`` of ``(pixels, target)``.

    ``pixels`` are images in ``[0, 1]``: wrap a model trained on normalized inputs in
    :class:`~.pixels.Normalized`. With ``masking_check``, PGD also runs at ``eps=1`` (see the
    module docstring). ``seed`` draws PGD's random starts."""
    attacks = check_attacks(attacks)
    radii = sorted({check_eps(e) for e in eps})
    check_steps(steps)
    if not radii:
        raise ValueError("eps is empty; give at least one radius, e.g. [0.1, 0.2, 0.3]")
    plan = [(name, e) for name in attacks for e in radii if e > 0]
    if masking_check and ("pgd", MASKING_EPS) not in plan:
        plan.append(("pgd", MASKING_EPS))
    counts = dict.fromkeys([("clean", 0.0), *plan, *((WORST, e) for e in radii if e > 0)], 0)
    total = 0
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        for x, y in batches:
            if len(x) == 0:
                continue
            total += len(x)
            with torch.no_grad():
                right = check_logits(model(x), len(x)).argmax(1) == y
            counts[("clean", 0.0)] += int(right.sum())
            survived = {e: right.clone() for e in radii if e > 0}  # robust to every attack so far, per example
            for name, e in plan:
                adversarial = _attack(name, model, x, y, e, steps, generator)
                with torch.no_grad():
                    still = model(adversarial).argmax(1) == y
                counts[(name, e)] += int(still.sum())
                if e in survived:
                    survived[e] &= still
            for e, robust in survived.items():
                counts[(WORST, e)] += int(robust.sum())
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("no examples to attack: the batches were empty")
    return [RobustAccuracy(name, e, correct, total) for (name, e), correct in counts.items()]


@dataclass(frozen=True)
class MaskingCheck:
    """One check of :func:`masking_checks`: its name, whether it passed, and the numbers behind it."""

    name: str
    passed: bool
    detail: str


def masking_checks(results: Sequence[RobustAccuracy], tolerance: float = TOLERANCE) -> list[MaskingCheck]:
    """The checks of the module docstring that ``results`` allow (each needs its attacks)."""
    found = {(r.attack, r.eps): r.accuracy for r in results if r.attack != WORST}
    checks = []
    large = found.get(("pgd", MASKING_EPS))
    if large is not None:
        checks.append(MaskingCheck("accuracy falls at eps=1", large <= tolerance,
                                   f"PGD at eps 1 (any image): {large:.1%}"))  # fmt: skip
    eps_values = sorted({e for (_, e) in found if 0 < e < MASKING_EPS})
    for e in eps_values:
        for stronger, weaker, title in (
            ("pgd", "fgsm", "PGD at least as strong as FGSM"),
            ("pgd", "pgd_dlr", "cross-entropy finds what the margin loss finds"),
            ("pgd", "square", "gradients find what the black-box Square finds"),
        ):
            a, b = found.get((stronger, e)), found.get((weaker, e))
            if a is None or b is None:
                continue
            passed = a <= b + tolerance
            checks.append(MaskingCheck(f"{title} (eps {e:g})", passed,
                                       f"{stronger} {a:.1%} vs {weaker} {b:.1%}"))  # fmt: skip
    return checks
