"""Independent plain-torch transcriptions used as references by tests and benchmarks.

They follow the papers' and authors' formulas literally (softmax, divide, log, mask),
sharing no code with the package.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def authors_complement_entropy(logits: Tensor, target: Tensor, eps: bool = False) -> Tensor:
    """henry8527/COT's ComplementEntropy: sum(q log q * zerohot) / N / K.

    With ``eps=True`` it keeps the authors' 1e-7 and 1e-10; with ``eps=False`` it is
    the exact formula (0 log 0 taken as 0)."""
    n, k = logits.shape
    p = F.softmax(logits, dim=1)
    p_g = p.gather(1, target.unsqueeze(1))
    q = p / ((1 - p_g) + (1e-7 if eps else 0.0))
    log_q = torch.log(q + (1e-10 if eps else 0.0))
    zerohot = torch.ones_like(p).scatter_(1, target.unsqueeze(1), 0)
    terms = q * log_q * zerohot
    if not eps:
        terms = torch.where(zerohot.bool(), terms, torch.zeros_like(terms))
    return terms.sum() / n / k


def complement_entropy_per_row(logits: Tensor, target: Tensor) -> Tensor:
    """H(q) per row: drop the target column, then softmax and -sum q log q (the textbook definition)."""
    n, k = logits.shape
    keep = ~F.one_hot(target, k).bool()
    complement_logits = logits[keep].reshape(n, k - 1)
    q = F.softmax(complement_logits, dim=1)
    return -(q * torch.log(q)).sum(1)


def authors_guided_complement_entropy(logits: Tensor, target: Tensor, alpha: float) -> Tensor:
    """henry8527/GCE without epsilons: sum(p_g^alpha * sum(q log q)) / N / log K."""
    n, k = logits.shape
    p = F.softmax(logits, dim=1)
    p_g = p.gather(1, target.unsqueeze(1)).squeeze(1)
    return -(p_g**alpha * complement_entropy_per_row(logits, target)).sum() / n / math.log(k)


def complement_cross_entropy_reference(logits: Tensor, target: Tensor, balancing_factor: float = 1.0) -> Tensor:
    k = logits.shape[1]
    entropy = complement_entropy_per_row(logits, target).mean()
    return F.cross_entropy(logits, target) - balancing_factor * entropy / (k - 1)


def focal_reference(logits: Tensor, target: Tensor, gamma: float) -> Tensor:
    p = F.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return (-((1 - p) ** gamma) * torch.log(p)).mean()
