"""Compare training runs (CE, COT, equal-compute CE, ...): tables, figures, ``report.md``.

- :mod:`.records`: the data contract, :class:`RunRecord`, and ``records.json`` I/O.
- :mod:`.statistics`: paired differences over seeds, their intervals and verdicts; :data:`~.statistics.METRICS`.
- :mod:`.tables`: mean ± std per method, convergence speed, markdown/console rendering.
- :mod:`.verdict`: the headline, "does COT help?", in plain words, with its warnings (small test set, saturation).
- :mod:`.facts`: what the runs were: data sizes, classes, resolved settings, versions, machine.
- :mod:`.figures`: the forest plot of the paired differences, wrong-class probabilities (the COT
  blog's picture), reliability, learning curves.
- :mod:`.markdown`: ``report.md``: the verdict and forest plot first, then the facts, tables and notes.
- :mod:`.compare`: :func:`write_report`, which does all of the above.

:mod:`.records` is light; the rest (matplotlib, torchmetrics) loads on first use.
"""

from typing import Any

from .records import RunRecord, load_predictions, load_records, save_records, validate_records

__all__ = [
    "ReportPaths",
    "RunRecord",
    "load_predictions",
    "load_records",
    "save_records",
    "validate_records",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in ("ReportPaths", "write_report"):
        from . import compare

        return getattr(compare, name)
    raise AttributeError(f"module 'complement.experiments.report' has no attribute {name!r}")
