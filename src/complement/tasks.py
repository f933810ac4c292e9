"""Deprecated: moved to :mod:`complement.experiments.tasks` in 0.2.0 (names still resolve here, with a warning)."""

from ._deprecation import moved_module

__getattr__ = moved_module(__name__, "complement.experiments.tasks")
