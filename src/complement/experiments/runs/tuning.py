"""Learning-rate tuning of a comparison (``compare --tune.lr``): each method's own rate, chosen on validation.

A claim that COT beats cross-entropy is only as good as cross-entropy's learning rate.
Bouthillier et al., "Accounting for Variance in Machine Learning Benchmarks" (MLSys 2021),
tune every method before comparing them; Dodge et al., "Show Your Work" (EMNLP 2019), ask
for the tuning budget to be reported. So, before the paired runs, each method trains once
per rate of the grid and tuning seed, in ``DIR/tune/<method>-lr<rate>-seed<s>``, and keeps
the rate whose **validation** metric at the end of training (the model that is tested),
averaged over the tuning seeds, is best; ties go to the smaller rate. The test split is never
read for the choice. The paired runs then train each method at its own rate.

``compare.json`` keeps the settings (``tune``) and the chosen rates (``tuned_lr``), and the
report's "Learning-rate tuning" section shows every rate's validation result, the choice
and the budget. Tuning runs resume like the others; a comparison grown by methods tunes the
new ones; the settings never change on ``--resume``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..report.records import RunRecord
from .config import BEST_MODES

TUNE_DIR = "tune"
TUNE_OPTIONS = ("lr", "seeds", "metric")
DEFAULT_METRIC = "val_acc"
MAX_RATES = 20


@dataclass
class TuneConfig:
    """Per-method learning rates chosen on the validation split before the paired runs.

    Any ``--tune.*`` option turns tuning on (``lr`` is then required).

    Args:
        lr: the grid of learning rates, e.g. ``[3e-4, 1e-3, 3e-3]``; every method trains at each.
        seeds: tuning runs per method and rate (seeds 0, 1, ...; default 1); the mean is compared.
        metric: the validation metric at the end of training that picks the rate: ``val_acc``
            (default), ``val_precision``, ``val_loss``, ``val_nll`` or ``val_ece``.
    """

    lr: list[float] | None = None
    seeds: int | None = None
    metric: str | None = None

    def given(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class TuneSettings:
    """A :class:`TuneConfig` with its values filled in and checked, as saved in ``compare.json``."""

    lr: tuple[float, ...]
    seeds: int = 1
    metric: str = DEFAULT_METRIC

    def __post_init__(self) -> None:
        rates = self.lr
        if isinstance(rates, (str, bytes)) or not isinstance(rates, (list, tuple)) or len(rates) < 2:
            raise ValueError(
                f"--tune.lr must be a list of at least 2 learning rates, e.g. '[1e-3, 3e-3]'; got {rates!r}"
            )
        for rate in rates:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"--tune.lr: learning rates are finite numbers > 0; got {rate!r}")
        if len(set(rates)) != len(rates) or len(rates) > MAX_RATES:
            raise ValueError(f"--tune.lr: give each rate once, at most {MAX_RATES} of them; got {list(rates)}")
        seeds = self.seeds
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 100:
            raise ValueError(f"--tune.seeds must be an integer in [1, 100] (tuning runs per rate); got {seeds!r}")
        if self.metric not in BEST_MODES:
            raise ValueError(f"--tune.metric must be one of {sorted(BEST_MODES)}; got {self.metric!r}")
        object.__setattr__(self, "lr", tuple(sorted(float(rate) for rate in rates)))

    def to_dict(self) -> dict[str, Any]:
        return {"lr": list(self.lr), "seeds": self.seeds, "metric": self.metric}

    @classmethod
    def resolve(cls, given: TuneConfig | None) -> TuneSettings | None:
        """The settings asked for; None when no ``--tune.*`` option is given."""
        options = (given or TuneConfig()).given()
        if not options:
            return None
        if "lr" not in options:
            raise ValueError("--tune needs --tune.lr, the grid of learning rates, e.g. '[1e-3, 3e-3, 1e-2]'")
        return cls(tuple(options["lr"]), options.get("seeds", 1), options.get("metric", DEFAULT_METRIC))

    @classmethod
    def from_saved(cls, saved: Any, where: str) -> TuneSettings | None:
        if saved is None:
            return None
        if not isinstance(saved, dict) or set(saved) != set(TUNE_OPTIONS):
            raise ValueError(f"{where}: the saved tuning settings do not fit this version of complement ({saved!r})")
        return cls(tuple(saved["lr"]), saved["seeds"], saved["metric"])

    def describe(self) -> str:
        return f"lr [{', '.join(f'{r:g}' for r in self.lr)}], {self.seeds} seed(s) a rate, by {self.metric}"


def refuse_tune_changes(given: TuneConfig | None, saved: TuneSettings | None, directory: Any) -> None:
    """``--resume`` keeps the tuning settings saved (or their absence)."""
    asked = TuneSettings.resolve(given)
    if asked is None or asked == saved:
        return
    has = f"its saved tuning ({saved.describe()})" if saved is not None else "no tuning"
    raise ValueError(
        f"--resume continues the comparison {directory} as saved, with {has}; --tune options cannot change that. "
        "Start a new comparison to tune otherwise."
    )


def tune_run_name(method: str, lr: float, seed: int) -> str:
    """The folder of one tuning run, inside ``DIR/tune``."""
    return f"{method}-lr{lr:g}-seed{seed}"


def final_metric(record: RunRecord, metric: str) -> float | None:
    """The validation ``metric`` at the end of training (the model that is tested); None when not finite."""
    for row in reversed(record.history):
        if metric in row and row[metric] is not None:
            value = float(row[metric])
            return value if math.isfinite(value) else None
    return None


def choose(results: dict[float, list[float | None]], metric: str) -> float:
    """The rate with the best mean ``metric``; a rate with a diverged run (None) scores worst; ties: the smaller."""
    sign = 1.0 if BEST_MODES[metric] == "max" else -1.0

    def score(rate: float) -> tuple[float, float]:
        values = results[rate]
        if not values or any(v is None for v in values):
            return (-math.inf, -rate)
        return (sign * sum(v for v in values if v is not None) / len(values), -rate)

    return max(results, key=score)
