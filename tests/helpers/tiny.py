"""A tiny model, fixed data and a hand-written COT loop: the reference for the front ends."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.helpers.references import authors_complement_entropy

NUM_FEATURES, NUM_CLASSES = 6, 5


def make_data(n: int = 48, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, NUM_FEATURES, generator=g, dtype=dtype)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    return x, y


def make_model(seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(NUM_FEATURES, 8), nn.Tanh(), nn.Linear(8, NUM_CLASSES)).to(dtype)


def make_optimizers(model: nn.Module, kind: str):
    """'shared': one Adam for both steps (the blog); 'two': two momentum SGDs (the authors)."""
    if kind == "shared":
        return [torch.optim.Adam(model.parameters(), lr=0.01)]
    return [torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4) for _ in range(2)]


def reference_loop(model, optimizers, batches, mode: str, weight: float = 1.0, record: list | None = None):
    """The COT algorithm written out by hand, with the authors' formula (no epsilons).

    ``record`` (alternate mode) collects each batch's losses and phase-1 accuracy counts."""
    ce_opt, comp_opt = optimizers[0], optimizers[-1]
    for x, y in batches:
        if mode in ("alternate", "off"):
            ce_opt.zero_grad()
            logits = model(x)
            ce = F.cross_entropy(logits, y)
            ce.backward()
            ce_opt.step()
            if mode == "alternate":
                comp_opt.zero_grad()
                complement = authors_complement_entropy(model(x), y)
                (weight * complement).backward()
                comp_opt.step()
                if record is not None:
                    correct = int((logits.argmax(1) == y).sum())
                    record.append(
                        {"train_loss": ce.item(), "cot_loss": complement.item(), "correct": correct, "n": len(y)}
                    )
        else:
            ce_opt.zero_grad()
            logits = model(x)
            (F.cross_entropy(logits, y) + weight * authors_complement_entropy(logits, y)).backward()
            ce_opt.step()
    return model


def batches_of(x, y, size: int):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def assert_same_parameters(a: nn.Module, b: nn.Module, atol: float = 1e-6):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=atol, rtol=0, msg=lambda m, name=name: f"{name}: {m}")
