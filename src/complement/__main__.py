"""``python -m complement``: the command line (:mod:`complement.experiments.cli`)."""

from complement.experiments.cli import main

main()
