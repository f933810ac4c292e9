"""Harder variants of a classification training set: label noise, long tail, few shot.

They change the *training* set only; validation and test stay clean and balanced, so
that a method's gain is measured on the real distribution.

* ``label_noise`` (Chen et al. study COT's robustness the same way): a fraction of the
  training labels, chosen at random, is replaced by a label drawn uniformly from the
  *other* classes, so exactly ``round(fraction * n)`` labels are wrong.
* ``imbalance``: the exponential long tail of Cui et al. (CVPR 2019), used by the
  complement cross-entropy paper (Kim et al., 2020): class ``c`` keeps
  ``n_max * ratio ** (-c / (K - 1))`` examples, so class 0 is the head and the ratio of
  the largest to the smallest class is ``ratio``.
* ``few_shot``: ``n`` training examples per class.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_label_noise(fraction: float) -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"label_noise is the fraction of training labels to flip and must be in [0, 1); got {fraction} "
            "(e.g. label_noise=0.2 flips 20% of them)"
        )
    return fraction


def check_imbalance(ratio: float) -> float:
    ratio = float(ratio)
    if not ratio >= 1.0:
        raise ValueError(
            f"imbalance is the ratio of the largest to the smallest training class and must be >= 1; got {ratio} "
            "(1 keeps the classes as they are; 10 or 100 are the usual long tails)"
        )
    return ratio


def check_few_shot(n: int | None) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(
            f"few_shot is the number of training examples per class and must be an integer >= 1; got {n!r}"
        )
    return int(n)


def check_harder(label_noise: float, imbalance: float, few_shot: int | None) -> None:
    """Validate the three options up front, before any data is read."""
    check_label_noise(label_noise)
    check_imbalance(imbalance)
    check_few_shot(few_shot)


def long_tail_counts(num_classes: int, n_max: int, ratio: float) -> list[int]:
    """Per-class counts of an exponential long tail from ``n_max`` (class 0) down to ``n_max / ratio``."""
    ratio = check_imbalance(ratio)
    if num_classes == 1:
        return [n_max]
    # floor, but never below one example: a class must stay learnable and present in train.
    return [max(1, int(n_max * ratio ** (-c / (num_classes - 1)) + 1e-9)) for c in range(num_classes)]


def take_per_class(indices: Tensor, labels: Tensor, counts: list[int]) -> Tensor:
    """The first ``counts[c]`` of ``indices`` whose label is ``c``, in their given (random) order."""
    picked = labels[indices]
    keep = torch.zeros(len(indices), dtype=torch.bool)
    for c, count in enumerate(counts):
        where = torch.nonzero(picked == c).flatten()
        if len(where) < count:
            raise ValueError(f"class {c} has {len(where)} training examples; {count} were requested")
        keep[where[:count]] = True
    return indices[keep]


def flip_labels(targets: Tensor, fraction: float, num_classes: int, generator: torch.Generator) -> Tensor:
    """A copy of ``targets`` with exactly ``round(fraction * n)`` labels moved to another class, uniformly."""
    fraction = check_label_noise(fraction)
    noisy = targets.clone()
    n_flip = round(fraction * len(targets))
    if n_flip == 0:
        return noisy
    if num_classes < 2:
        raise ValueError("label_noise needs at least two classes")
    chosen = torch.randperm(len(targets), generator=generator)[:n_flip]
    # adding 1..K-1 modulo K lands uniformly on the K-1 other classes
    shift = torch.randint(1, num_classes, (n_flip,), generator=generator)
    noisy[chosen] = (targets[chosen] + shift) % num_classes
    return noisy
