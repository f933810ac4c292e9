"""Compare training runs (CE, COT, equal-compute CE, ...): tables, figures, ``report.md``.

- :mod:`.records`: the data contract, :class:`RunRecord`, and ``records.json`` I/O.
- :mod:`.tables`: mean ± std per method, convergence speed, markdown/console rendering.
- :mod:`.figures`: wrong-class probabilities (the COT blog's picture), reliability, learning curves.
- :mod:`.markdown`: ``report.md`` with the equal-compute note.
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
