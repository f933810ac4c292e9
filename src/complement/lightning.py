"""Lightning 2.x front end: ``from complement.lightning import CotModule``."""

from .training.lightning_module import CotModule

__all__ = ["CotModule"]
