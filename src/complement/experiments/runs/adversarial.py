"""The adversarial-training methods of the harness (``pgd_at``, ``trades``, ``cot_pgd``): their
:class:`~complement.training.AdversarialTraining` from a run's ``adv_*`` settings and its task,
checked before a run's directory is made, and what they cost in training passes."""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

from ...training.adversarial import AdversarialTraining
from .config import ResolvedTrainConfig
from .methods import get_method
from .robust import pixel_normalization, to_pixels

PIXEL_CHECK_EXAMPLES = 256  # training inputs checked to be images in [0, 1] before an adversarial run starts


def adversarial_training(name: str, config: ResolvedTrainConfig, task: Any) -> AdversarialTraining | None:
    """The adversarial training of method ``name`` on ``task`` (None for a method without), from the run's
    ``adv_*`` settings and the task's pixel normalization; checked before a directory is made: an image task
    with a radius, whose first training inputs are pixels in [0, 1] once unnormalized."""
    method = get_method(name)
    if method.adversarial is None:
        return None
    what = f"method {name}"
    mean, std = pixel_normalization(task, what)
    if config.adv_eps is None:
        raise ValueError(
            f"{what}: task {task.name!r} gives no adversarial-training radius; set one in pixels of [0, 1] images "
            "with --train.adv_eps (e.g. 0.1, or 8/255 for colour images)"
        )
    inputs = next(iter(DataLoader(task.train, batch_size=PIXEL_CHECK_EXAMPLES, collate_fn=task.collate_fn)))[0]
    to_pixels(task, inputs, what, split="training")
    return AdversarialTraining(method.adversarial, eps=config.adv_eps, steps=config.adv_steps,
                               step_size=config.adv_step_size, beta=config.trades_beta, mean=mean, std=std)  # fmt: skip


def training_passes_per_batch(phases: int, adversarial: AdversarialTraining | None) -> int:
    """Forward/backward passes a training micro-batch costs: one a COT phase, plus the attack's (equal compute)."""
    return phases + (0 if adversarial is None else adversarial.passes_per_batch)
