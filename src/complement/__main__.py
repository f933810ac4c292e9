"""The ``complement`` command and ``python -m complement``: the command line (:mod:`complement.experiments.cli`).

:func:`main` is the console script. It imports the command line only when it runs, so that an
install without the ``cli`` extra gets one line naming the extra instead of a traceback, and it
lets ``--config`` name a config shipped with the package (:mod:`complement.experiments.configs`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._extras import extra_message, is_extra_missing


def main(args: Sequence[str] | None = None) -> None:
    """Run the command line on ``args`` (default ``sys.argv[1:]``)."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        from complement.experiments.cli import main as cli_main
    except ModuleNotFoundError as error:
        if not is_extra_missing(error):
            raise  # one of complement's own modules: a bug, with its traceback
        raise SystemExit("complement: " + extra_message(error, "cli", "the command line")) from None
    cli_main(argv)


if __name__ == "__main__":
    main()
