"""Paired comparisons over seeds: does a method beat a baseline, and with what confidence?

For a seed ``s`` every method of a comparison starts from the same initial weights and
sees the same first-epoch data order (the runs layer seeds both from ``s``), so run ``s``
of method A and run ``s`` of baseline B form a pair, and seed-to-seed variation that
both share cancels in their difference ``d_s = A_s - B_s``. For each metric:

- the mean paired difference with a 95% *t*-interval over the ``n`` pairs
  (``mean ± t_{0.975, n-1} * sd / sqrt(n)``) and its paired *t*-test p-value;
- with ``n >= 10``, also a 95% bootstrap interval of the mean difference (BCa, 10,000
  resamples of the pairs, fixed seed), which does not assume normal differences
  (Agarwal et al., "Deep RL at the edge of the statistical precipice", NeurIPS 2021,
  argue for interval estimates over few runs rather than point estimates);
- a verdict from the numbers: ``better`` or ``worse`` when the t-interval excludes 0
  (``p < 0.05``), in the metric's direction (accuracy up; NLL and ECE down), else
  ``not separable with n seeds``, with the number of seeds at which the observed mean
  difference and spread would give an interval that excludes 0.

The distributions come from scipy; nothing here is hand-written beyond the bookkeeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .records import RunRecord

CONFIDENCE = 0.95
BOOTSTRAP_MIN_SEEDS = 10
BOOTSTRAP_RESAMPLES = 10_000
MAX_SEEDS_REPORTED = 10_000
# Which way is better for each metric (test_* keys of the records).
HIGHER_IS_BETTER = {"test_acc": True, "test_precision": True, "test_nll": False, "test_ece": False}
METRIC_NAMES = {"test_acc": "test accuracy", "test_precision": "macro precision", "test_nll": "test NLL",
                "test_ece": "test ECE"}  # fmt: skip


@dataclass(frozen=True)
class PairedComparison:
    """``method`` minus ``baseline`` on ``metric`` over ``n`` paired seeds."""

    method: str
    baseline: str
    metric: str
    n: int
    mean: float
    interval: tuple[float, float] | None  # the t-interval; None with fewer than 2 pairs
    bootstrap: tuple[float, float] | None  # with at least BOOTSTRAP_MIN_SEEDS pairs
    p_value: float | None
    verdict: str  # "better", "worse" or "not separable"
    seeds_needed: int | None  # for "not separable": seeds the observed spread would need

    def sentence(self) -> str:
        """One sentence generated from the numbers."""
        name = METRIC_NAMES.get(self.metric, self.metric)
        head = f"`{self.method}` − `{self.baseline}`, {name}: {format_difference(self.mean, self.metric)}"
        if self.interval is None:
            return f"{head} from a single seed: no interval, not separable with 1 seed."
        low, high = self.interval
        parts = [f"95% CI [{format_difference(low, self.metric)}, {format_difference(high, self.metric)}]"]
        if self.bootstrap is not None:
            b_low, b_high = self.bootstrap
            parts.append(
                f"bootstrap [{format_difference(b_low, self.metric)}, {format_difference(b_high, self.metric)}]"
            )
        p_text = format_p(self.p_value)
        parts.append(f"p {p_text if p_text.startswith('<') else '= ' + p_text}, {self.n} paired seeds")
        detail = f"{head} ({'; '.join(parts)})"
        if self.verdict != "not separable":
            return f"{detail}: **{self.verdict}**."
        return f"{detail}: not separable with {self.n} seeds{self._need()}."

    def _need(self) -> str:
        if self.seeds_needed is None:
            return " (no difference observed)"
        if self.seeds_needed > MAX_SEEDS_REPORTED:
            return f" (the observed difference would need over {MAX_SEEDS_REPORTED:,} seeds)"
        return f" (the observed difference and spread would need about {self.seeds_needed} seeds)"


def format_difference(value: float, metric: str) -> str:
    if metric in ("test_acc", "test_precision", "test_ece"):
        return f"{value * 100:+.2f} pts"  # percentage points
    return f"{value:+.4f}"


def format_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def seeds_needed(mean: float, sd: float, confidence: float = CONFIDENCE) -> int | None:
    """The smallest ``n`` whose t-interval ``mean ± t * sd / sqrt(n)`` excludes 0 (None if ``mean`` is 0)."""
    if mean == 0:
        return None
    if sd == 0:
        return 2
    n = 2
    while n <= MAX_SEEDS_REPORTED:
        if stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) < abs(mean):
            return n
        n += 1
    return MAX_SEEDS_REPORTED + 1


def paired_comparison(
    method: str, baseline: str, metric: str, values: dict[int, float], base_values: dict[int, float]
) -> PairedComparison | None:
    """Compare ``values`` (seed -> metric of ``method``) with ``base_values`` on the seeds both have."""
    seeds = sorted(set(values) & set(base_values))
    if not seeds:
        return None
    diffs = np.array([values[s] - base_values[s] for s in seeds], dtype=np.float64)
    n, mean = len(diffs), float(diffs.mean())
    if n < 2:
        return PairedComparison(method, baseline, metric, n, mean, None, None, None, "not separable", None)
    sd = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    interval = (mean - half, mean + half)
    if sd == 0:
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(stats.ttest_rel([values[s] for s in seeds], [base_values[s] for s in seeds]).pvalue)
    boot = None
    if n >= BOOTSTRAP_MIN_SEEDS and sd > 0:
        result = stats.bootstrap((diffs,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                                 method="BCa", random_state=np.random.default_rng(0))  # fmt: skip
        boot = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    separated = interval[0] > 0 or interval[1] < 0
    if separated:
        up = mean > 0
        verdict = "better" if up == HIGHER_IS_BETTER.get(metric, True) else "worse"
        return PairedComparison(method, baseline, metric, n, mean, interval, boot, p_value, verdict, None)
    return PairedComparison(
        method, baseline, metric, n, mean, interval, boot, p_value, "not separable", seeds_needed(mean, sd)
    )


BASELINES = ("ce", "ce_2x")
PAIRED_METRICS = ("test_acc", "test_nll", "test_ece")


def paired_comparisons(
    records: list[RunRecord], baselines: tuple[str, ...] = BASELINES, metrics: tuple[str, ...] = PAIRED_METRICS
) -> list[PairedComparison]:
    """Every method against every baseline present (and ``ce_2x`` against ``ce``), on each metric."""
    values: dict[str, dict[str, dict[int, float]]] = {}
    for record in records:
        for metric, value in record.test.items():
            values.setdefault(record.method, {}).setdefault(metric, {})[record.seed] = float(value)
    comparisons = []
    ordered = sorted(values.items(), key=lambda item: item[0] in baselines)  # the methods first, then ce_2x vs ce
    for method, mine in ordered:
        for baseline in baselines:
            if baseline == method or baseline not in values or (method in baselines and baseline == "ce_2x"):
                continue
            for metric in metrics:
                if metric in mine and metric in values[baseline]:
                    found = paired_comparison(method, baseline, metric, mine[metric], values[baseline][metric])
                    if found is not None:
                        comparisons.append(found)
    return comparisons
