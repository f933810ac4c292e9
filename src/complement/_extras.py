"""Optional dependencies: an entry point whose extra is not installed says which one in one line.

``complement`` itself needs torch and numpy only. The front ends and the command line need an
extra (``pyproject.toml``'s ``[project.optional-dependencies]``); importing one without it raises
a :class:`ModuleNotFoundError` whose one-line message names the extra to install::

    try:
        from .training.lightning_module import CotModule
    except ModuleNotFoundError as error:
        raise missing_extra(error, "train", __name__) from None

A module of ``complement`` itself that is missing is a bug, not a missing extra:
:func:`missing_extra` gives that error back unchanged, traceback included.
"""

from __future__ import annotations

__all__ = ["extra_message", "is_extra_missing", "missing_extra"]


def is_extra_missing(error: ModuleNotFoundError) -> bool:
    """Whether ``error`` is about a third-party module (an extra's), not one of ``complement``'s own."""
    return bool(error.name) and str(error.name).split(".")[0] != "complement"


def extra_message(error: ModuleNotFoundError, extra: str, what: str) -> str:
    """One line: ``what`` needs ``extra``, how to install it, and the module that was missing."""
    return f"{what} needs the '{extra}' extra: pip install \"complement[{extra}]\" (no module named {error.name!r})"


def missing_extra(error: ModuleNotFoundError, extra: str, what: str) -> ModuleNotFoundError:
    """The error to raise (``from None``) when importing ``what`` failed with ``error``.

    A missing third-party module gives a new :class:`ModuleNotFoundError` (same ``name``) whose
    message names ``extra``; a missing ``complement`` module gives ``error`` itself."""
    if not is_extra_missing(error):
        return error
    return ModuleNotFoundError(extra_message(error, extra, what), name=error.name)
