"""The COT training engine.

- :mod:`.objective`: what each phase minimizes (modes ``alternate``, ``joint``, ``off``).
- :mod:`.stepper`: the COT step, written once for every front end.
- :mod:`.adversarial`: adversarial training inside that step (``pgd_at``, ``trades``).
- :mod:`.torch_step`: the plain-PyTorch front end, :class:`CotStep`.
- :mod:`.data`: :func:`resumable_loader`, a loader whose position resumes exactly (needs ``torchdata``).
- :mod:`complement.lightning`: the Lightning 2.x front end, ``CotModule``, with its
  checkpoint writer and divergence guard.
- :mod:`complement.hf`: the Hugging Face Transformers front end, ``CotTrainer``.
"""

from typing import Any

from .adversarial import AdversarialTraining
from .objective import MODES, CotConfig, CotObjective, LinearLogits, Phase
from .stepper import CotStepper, DivergenceError
from .torch_step import CotStep

__all__ = [
    "MODES",
    "AdversarialTraining",
    "CotConfig",
    "CotObjective",
    "CotStep",
    "CotStepper",
    "DivergenceError",
    "LinearLogits",
    "Phase",
    "resumable_loader",
]


def __getattr__(name: str) -> Any:
    if name == "resumable_loader":  # imported on use: torchdata is an optional dependency
        from .data import resumable_loader

        return resumable_loader
    raise AttributeError(f"module 'complement.training' has no attribute {name!r}")
