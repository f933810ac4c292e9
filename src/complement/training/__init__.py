"""The COT training engine.

- :mod:`.objective`: what each phase minimizes (modes ``alternate``, ``joint``, ``off``).
- :mod:`.stepper`: the COT step, written once for every front end.
- :mod:`.torch_step`: the plain-PyTorch front end, :class:`CotStep`.
- :mod:`complement.lightning`: the Lightning 2.x front end, ``CotModule``.
- :mod:`complement.hf`: the Hugging Face Transformers front end, ``CotTrainer``.
"""

from .objective import MODES, CotConfig, CotObjective, LinearLogits, Phase
from .stepper import CotStepper
from .torch_step import CotStep

__all__ = ["MODES", "CotConfig", "CotObjective", "CotStep", "CotStepper", "LinearLogits", "Phase"]
