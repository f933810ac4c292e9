"""Deprecated: moved to :mod:`complement.experiments.cli` in 0.2.0 (``python -m complement.cli`` still runs it)."""

import warnings

from ._deprecation import moved_module

__getattr__ = moved_module(__name__, "complement.experiments.cli")

if __name__ == "__main__":
    warnings.warn(
        "python -m complement.cli is deprecated; run `complement` or `python -m complement`",
        FutureWarning,
        stacklevel=1,
    )
    from complement.experiments.cli import main

    main()
