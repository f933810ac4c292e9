"""Lightning 2.x front end: ``from complement.lightning import CotModule``.

Also here: :class:`AtomicCheckpointIO` (checkpoints written whole or not at all),
:class:`CotCheckpoint` (``ModelCheckpoint`` whose step saves resume correctly),
:class:`DivergenceGuard` (stops a diverged run before a checkpoint keeps it) and
:func:`resumable_loader` (a training loader that resumes mid-epoch exactly)."""

from .training.checkpointing import AtomicCheckpointIO, CotCheckpoint
from .training.data import resumable_loader
from .training.divergence import DivergenceError, DivergenceGuard
from .training.lightning_module import CotModule

__all__ = ["AtomicCheckpointIO", "CotCheckpoint", "CotModule", "DivergenceError", "DivergenceGuard", "resumable_loader"]
