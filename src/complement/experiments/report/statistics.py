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
  (``p < 0.05``), in the metric's direction (accuracy up; NLL and ECE down);
  ``no difference`` when the mean difference is 0 (up to float rounding: below
  :data:`NEGLIGIBLE` of the metric's scale), however many seeds; else ``not separable
  with n seeds``, with the seeds a new experiment would need to separate a true difference
  as large as the observed mean, with the observed spread, 80% of the time: the power of a
  two-sided paired *t*-test at α 0.05 (:data:`POWER`; "over 10,000" past
  :data:`MAX_SEEDS_REPORTED`). The n at which the observed numbers would *just* reach
  p = 0.05 is about 50% power, so it understates the seeds by about half.

What each ``test_*`` metric is (its name, direction, unit, whether it is a share of test
examples and whether it heads the report's verdict) is data: :data:`METRICS`. A new metric
in the verdict and the forest plot is one :class:`Metric` entry. The robust accuracies
(``test_robust_acc_<attack>_eps<ε>``, :func:`~.records.robust_key`) get theirs from their key
(:func:`robust_metric`): one per attack and ε run, whichever the records hold.

The distributions come from scipy; nothing here is hand-written beyond the bookkeeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .records import WORST, RunRecord, format_eps, parse_robust_key

CONFIDENCE = 0.95
POWER = 0.8  # of the "seeds needed" (Cohen's convention)
BOOTSTRAP_MIN_SEEDS = 10
BOOTSTRAP_RESAMPLES = 10_000
MAX_SEEDS_REPORTED = 10_000
# A mean difference below this share of the metric's scale (max(1, |values|)) is float rounding
# (the metrics are float32: about 1e-7 apart), so it is reported as no difference.
NEGLIGIBLE = 1e-6

BETTER, WORSE, NO_DIFFERENCE, NOT_SEPARABLE = "better", "worse", "no difference", "not separable"


@dataclass(frozen=True)
class Metric:
    """What the report knows of one ``test_*`` metric of the records."""

    key: str  # the records' key, e.g. "test_acc"
    name: str  # in sentences: "test accuracy"
    label: str  # in the verdict lines and the forest plot: "accuracy"
    higher_is_better: bool
    points: bool = False  # a share in [0, 1], shown in percentage points
    per_example: bool = False  # the share of test examples right: one example moves it by 1/N
    best: float | None = None  # the value no run can pass (accuracy 1): runs all there separate nothing
    headline: bool = False  # in the verdict at the top of the report and in the forest plot


# The verdict's metrics are the ``headline`` ones, in this order. The robust accuracies are added from
# their keys (robust_metric), as many as the records hold; the verdict gives them a block of their own.
METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("test_acc", "test accuracy", "accuracy", True, points=True, per_example=True, best=1.0, headline=True),
        Metric("test_nll", "test NLL", "NLL", False, headline=True),
        Metric("test_ece", "test ECE", "ECE", False, points=True, headline=True),
        Metric("test_precision", "macro precision", "macro precision", True, points=True),
    )
}
HEADLINE_METRICS = tuple(key for key, metric in METRICS.items() if metric.headline)
# Which way is better for each metric, and its name in sentences (derived from METRICS).
HIGHER_IS_BETTER = {key: metric.higher_is_better for key, metric in METRICS.items()}
METRIC_NAMES = {key: metric.name for key, metric in METRICS.items()}


def robust_metric(key: str) -> Metric | None:
    """The :class:`Metric` of a robust accuracy key (``test_robust_acc_worst_eps0.3``); None for another key.

    A share of the attacked test examples, in points, at best 1; the per-example ``worst`` case
    over the attacks is the one to read (docs/robustness.md)."""
    parsed = parse_robust_key(key)
    if parsed is None:
        return None
    attack, eps = parsed
    which = "worst-case robust accuracy" if attack == WORST else f"{attack} robust accuracy"
    label = f"robust acc. ε {format_eps(eps)}" if attack == WORST else f"{attack} acc. ε {format_eps(eps)}"
    return Metric(key, f"{which} at ε {format_eps(eps)}", label, True, points=True, per_example=True, best=1.0)


def metric_info(key: str) -> Metric:
    """The :class:`Metric` of ``key``; a metric neither in :data:`METRICS` nor a robust accuracy is a plain
    higher-is-better number."""
    return METRICS.get(key) or robust_metric(key) or Metric(key, key, key.removeprefix("test_"), True)


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
    verdict: str  # BETTER, WORSE, NO_DIFFERENCE or NOT_SEPARABLE
    seeds_needed: int | None  # for "not separable": seeds for 80% power at the observed difference and spread

    @property
    def seeds(self) -> str:
        return f"{self.n} seed{'s' if self.n != 1 else ''}"

    def interval_text(self, unit: bool = True) -> str:
        """``[low, high]`` of the t-interval, each with the metric's unit or, ``unit=False``, as bare
        numbers (after a difference that gives the unit); "" without an interval."""
        if self.interval is None:
            return ""
        low, high = (format_difference(bound, self.metric) for bound in self.interval)
        if not unit:
            low, high = low.removesuffix(" pts"), high.removesuffix(" pts")
        return f"[{low}, {high}]"

    def need(self) -> str:
        """For "not separable": the seeds for 80% power at the observed difference and spread, in a few words."""
        if self.seeds_needed is None:
            return ""
        if self.seeds_needed > MAX_SEEDS_REPORTED:
            return f"over {MAX_SEEDS_REPORTED:,} seeds"
        return f"~{self.seeds_needed} seeds"

    def short_verdict(self) -> str:
        """The verdict in a table cell: ``better``, ``worse``, ``no difference``, ``n.s. (~7 seeds)``, ``1 seed``."""
        if self.verdict != NOT_SEPARABLE:
            return self.verdict
        if self.interval is None:
            return "1 seed"
        return f"n.s. ({self.need()})" if self.need() else "n.s."

    def phrase(self) -> str:
        """The verdict with its seeds, for the report's headline: ``better, 10 seeds``,
        ``not separable with 3 seeds, ~12 seeds needed``, ``1 seed: no interval``."""
        if self.verdict in (BETTER, WORSE, NO_DIFFERENCE):
            return f"{self.verdict}, {self.seeds}"
        if self.interval is None:
            return "1 seed: no interval"
        return f"not separable with {self.seeds}" + (f", {self.need()} needed" if self.need() else "")

    def sentence(self) -> str:
        """One sentence generated from the numbers."""
        name = metric_info(self.metric).name
        head = f"`{self.method}` − `{self.baseline}`, {name}: {format_difference(self.mean, self.metric)}"
        if self.interval is None:
            if self.verdict == NO_DIFFERENCE:
                return f"{head} from a single seed: no difference."
            return f"{head} from a single seed: no interval, not separable with 1 seed."
        parts = [f"95% CI {self.interval_text()}"]
        if self.bootstrap is not None:
            b_low, b_high = self.bootstrap
            parts.append(
                f"bootstrap [{format_difference(b_low, self.metric)}, {format_difference(b_high, self.metric)}]"
            )
        p_text = format_p(self.p_value)
        parts.append(f"p {p_text if p_text.startswith('<') else '= ' + p_text}, {self.n} paired seeds")
        detail = f"{head} ({'; '.join(parts)})"
        if self.verdict in (BETTER, WORSE):
            return f"{detail}: **{self.verdict}**."
        if self.verdict == NO_DIFFERENCE:
            return f"{detail}: no difference."
        return f"{detail}: not separable with {self.n} seeds{self._need()}."

    def _need(self) -> str:
        if self.seeds_needed is not None and self.seeds_needed > MAX_SEEDS_REPORTED:
            return f" (the observed difference would need {self.need()})"
        if self.seeds_needed is not None:
            return (
                f" (80% power at the observed difference and spread, paired t at α 0.05, needs about "
                f"{self.seeds_needed} seeds)"
            )
        return ""


def format_difference(value: float, metric: str) -> str:
    """``+0.80 pts`` (percentage points) or ``-0.0123``; values too small for those digits in
    two significant ones (``-3.2e-05``), not as ``-0.0000``."""
    points = metric_info(metric).points
    shown, digits, unit = (value * 100, 2, " pts") if points else (value, 4, "")
    if shown != 0 and abs(shown) < 0.5 * 10**-digits:
        return f"{shown:+.1e}{unit}"
    return f"{shown:+.{digits}f}{unit}"


def format_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def power(effect: float, n: int, confidence: float = CONFIDENCE) -> float:
    """The power of a two-sided paired *t*-test over ``n`` pairs at level ``1 - confidence`` when the true mean
    difference is ``effect`` standard deviations (Cohen's d): the noncentral *t* beyond the critical values."""
    df, shift = n - 1, effect * math.sqrt(n)
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def seeds_needed(mean: float, sd: float, confidence: float = CONFIDENCE, target: float = POWER) -> int | None:
    """The fewest paired seeds (>= 2) at which a two-sided paired *t*-test has power ``target`` against a true
    difference ``mean`` with spread ``sd`` (None if ``mean`` is 0; ``MAX_SEEDS_REPORTED + 1`` past the cap)."""
    if mean == 0:
        return None
    if sd == 0:
        return 2
    effect = abs(mean) / sd

    def enough(n: int) -> bool:  # scipy's noncentral t can give nan far in the tail, where the power is ~1
        found = power(effect, n, confidence)
        return math.isnan(found) or found >= target

    high = 2  # power grows with n: double up to the first n that is enough, then bisect below it
    while not enough(high):
        if high >= MAX_SEEDS_REPORTED:
            return MAX_SEEDS_REPORTED + 1
        high = min(2 * high, MAX_SEEDS_REPORTED)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return low


def paired_comparison(
    method: str, baseline: str, metric: str, values: dict[int, float], base_values: dict[int, float]
) -> PairedComparison | None:
    """Compare ``values`` (seed -> metric of ``method``) with ``base_values`` on the seeds both have."""
    seeds = sorted(set(values) & set(base_values))
    if not seeds:
        return None
    diffs = np.array([values[s] - base_values[s] for s in seeds], dtype=np.float64)
    n, mean = len(diffs), float(diffs.mean())
    scale = max([1.0] + [abs(values[s]) for s in seeds] + [abs(base_values[s]) for s in seeds])
    if abs(mean) <= NEGLIGIBLE * scale:  # no difference, or float rounding of none
        mean = 0.0
        if np.all(np.abs(diffs) <= NEGLIGIBLE * scale):
            diffs = np.zeros_like(diffs)
    if n < 2:
        verdict = NO_DIFFERENCE if mean == 0 else NOT_SEPARABLE
        return PairedComparison(method, baseline, metric, n, mean, None, None, None, verdict, None)
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
    if mean == 0:
        return PairedComparison(method, baseline, metric, n, mean, interval, boot, p_value, NO_DIFFERENCE, None)
    separated = interval[0] > 0 or interval[1] < 0
    if separated:
        up = mean > 0
        verdict = BETTER if up == metric_info(metric).higher_is_better else WORSE
        return PairedComparison(method, baseline, metric, n, mean, interval, boot, p_value, verdict, None)
    return PairedComparison(
        method, baseline, metric, n, mean, interval, boot, p_value, NOT_SEPARABLE, seeds_needed(mean, sd)
    )


BASELINES = ("ce", "ce_2x")
PAIRED_METRICS = HEADLINE_METRICS


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
