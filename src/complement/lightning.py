"""Lightning 2.x front end: ``from complement.lightning import CotModule``.

Also here: :class:`AtomicCheckpointIO` (checkpoints written whole or not at all),
:class:`CotCheckpoint` (``ModelCheckpoint`` whose step saves resume correctly),
:class:`DivergenceGuard` (stops a diverged run before a checkpoint keeps it) and
:func:`resumable_loader` (a training loader that resumes mid-epoch exactly).

Needs the ``train`` extra (``pip install "complement[train]"``: Lightning, torchmetrics, torchdata);
without it, importing this module raises a one-line ``ModuleNotFoundError`` that says so."""

from ._extras import missing_extra

try:
    from .training.checkpointing import AtomicCheckpointIO, CotCheckpoint
    from .training.data import resumable_loader
    from .training.divergence import DivergenceError, DivergenceGuard
    from .training.lightning_module import CotModule
except ModuleNotFoundError as error:
    raise missing_extra(error, "train", __name__) from None

__all__ = ["AtomicCheckpointIO", "CotCheckpoint", "CotModule", "DivergenceError", "DivergenceGuard", "resumable_loader"]
