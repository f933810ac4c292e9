"""Deprecated import paths: a module that moved keeps answering at its old name, with a warning.

The experiment harness moved under :mod:`complement.experiments` in 0.2.0; ``complement.tasks``,
``complement.runs``, ``complement.report`` and ``complement.cli`` forward to it.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved_module(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that warns once per name and returns ``new``'s attribute."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # dunder lookups (``__path__``, ``__file__``, ...) are the module's own
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old} moved to {new} in complement 0.2.0; import {name} from {new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    return __getattr__
