"""The report's answer to "does COT help?": the headline verdict, in plain words, with its warnings.

One line per (method, baseline) pair of :func:`~.statistics.paired_comparisons` (every
method against ``ce`` and ``ce_2x``, whichever ran, and ``ce_2x`` against ``ce``), giving
for each headline metric (:data:`~.statistics.HEADLINE_METRICS`: accuracy, NLL, ECE) the
mean paired difference, its 95% t-interval and the verdict with its seeds::

    `cot` vs `ce`: accuracy +0.80 pts [+0.20, +1.40] (better, 10 seeds); NLL −0.0123 [...] (better, 10 seeds); ...

then a one-sentence reading per method (:func:`reading`). Warnings stand next to the
number they concern (marked ⚠), by these rules:

- **Small test set** (metrics that are a share of test examples, ``Metric.per_example``:
  accuracy). The paired interval is over seeds on *one* test set of ``N`` examples; it
  leaves out how much the accuracy would move on another test set of that size. That
  sampling margin is the binomial one, ``1.96 * sqrt(p * (1 - p) / N)`` at the pair's
  mean accuracy ``p`` (two models scored on the same examples disagree on at most about
  ``2 (1 - p)`` of them, so the margin of their difference is of the same size). When it
  exceeds :data:`RESOLUTION` (1 point, the size of the gains at stake) the line says so,
  with ``N``, what one example is worth (``100 / N`` points) and the difference counted in
  examples. A 60-image test set at 95% accuracy has a margin of ±5.5 points, and one
  image is 1.67 points. ``N`` is the number of scored test predictions of a run (tokens
  for token tasks), else the recorded test-set size; unknown, the rule is skipped.
- **Wide interval** (the same metrics): the 95% interval's half-width exceeds
  :data:`RESOLUTION`, too wide to separate gains of about a point; more seeds narrow it.
- **Saturated** (metrics with a ``best`` value: accuracy 100%). A method and baseline
  both at the best value on every seed have nothing to separate and the line says so;
  when every method is, the verdict opens with "all methods at 100% ... on the test set:
  nothing to separate".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .records import RunRecord
from .statistics import (
    BASELINES,
    BETTER,
    HEADLINE_METRICS,
    NEGLIGIBLE,
    NO_DIFFERENCE,
    WORSE,
    PairedComparison,
    format_difference,
    metric_info,
)

RESOLUTION = 0.01  # one point of accuracy: the size of the gains COT is weighed by
SAMPLING_Z = 1.959963984540054  # the normal 97.5% quantile: a 95% binomial margin
WARNING = "⚠"


def test_set_size(records: list[RunRecord], scored: dict[str, int] | None = None) -> int | None:
    """The test examples a run is scored on: the rows of its predictions (``scored``, by record label),
    else the recorded test-set size; the smallest over the runs when they differ; None if unknown."""
    sizes = [n for n in (scored or {}).values() if n > 0]
    if not sizes:
        recorded = [r.facts["sizes"].get("test") for r in records if isinstance(r.facts.get("sizes"), dict)]
        sizes = [n for n in recorded if isinstance(n, int) and n > 0]
    return min(sizes) if sizes else None


def values_by_method(records: list[RunRecord], metric: str) -> dict[str, dict[int, float]]:
    """``{method: {seed: value}}`` of one test metric."""
    values: dict[str, dict[int, float]] = {}
    for record in records:
        if metric in record.test:
            values.setdefault(record.method, {})[record.seed] = float(record.test[metric])
    return values


def at_best(records: list[RunRecord], metric: str) -> set[str]:
    """The methods whose every seed is at the metric's best value (accuracy 1), if it has one."""
    best = metric_info(metric).best
    if best is None:
        return set()
    tolerance = NEGLIGIBLE * max(1.0, abs(best))
    values = values_by_method(records, metric)
    return {method for method, seeds in values.items() if all(abs(v - best) <= tolerance for v in seeds.values())}


def format_level(value: float, metric: str) -> str:
    return f"{value * 100:g}%" if metric_info(metric).points else f"{value:g}"


def sampling_margin(p: float, n: int) -> float:
    """The 95% binomial margin of a share ``p`` measured on ``n`` examples."""
    p = min(max(p, 0.0), 1.0)
    return SAMPLING_Z * math.sqrt(p * (1 - p) / n)


def warnings_for(c: PairedComparison, records: list[RunRecord], test_size: int | None) -> list[str]:
    """The ⚠ notes of one comparison, by the rules of the module docstring."""
    info = metric_info(c.metric)
    if not info.per_example:
        return []
    notes = []
    if test_size:
        values = values_by_method(records, c.metric)
        mine, base = values.get(c.method, {}), values.get(c.baseline, {})
        paired = [v for seeds in (mine, base) for s, v in seeds.items() if s in mine and s in base]
        p = sum(paired) / len(paired) if paired else 0.5
        margin = sampling_margin(p, test_size)
        if margin > RESOLUTION:
            examples = abs(c.mean) * test_size
            notes.append(
                f"{WARNING} small test set: this difference is {examples:.3g} of {test_size:,} examples (one is "
                f"{100 / test_size:.2f} pts), and sampling the test set alone moves an accuracy of {p * 100:.1f}% by "
                f"±{margin * 100:.1f} pts"
            )
    if c.interval is not None:
        half = (c.interval[1] - c.interval[0]) / 2
        if half > RESOLUTION:
            notes.append(f"{WARNING} wide interval: ±{half * 100:.2f} pts, over ±{RESOLUTION * 100:g} pt")
    return notes


def verdict_item(c: PairedComparison, records: list[RunRecord], test_size: int | None, best: set[str]) -> str:
    info = metric_info(c.metric)
    if c.method in best and c.baseline in best:
        level = format_level(info.best or 0.0, c.metric)
        return f"{info.label}: both at {level} on every seed, nothing to separate"
    number = format_difference_with_interval(c)
    return f"{info.label} {number} ({'; '.join([c.phrase(), *warnings_for(c, records, test_size)])})"


def format_difference_with_interval(c: PairedComparison) -> str:
    text = format_difference(c.mean, c.metric)
    return f"{text} {c.interval_text(unit=False)}" if c.interval is not None else text


def verdict_lines(
    records: list[RunRecord],
    comparisons: list[PairedComparison],
    test_size: int | None = None,
    metrics: Iterable[str] = HEADLINE_METRICS,
) -> list[str]:
    """The verdict section's markdown lines (without its heading)."""
    metrics = [m for m in metrics if any(c.metric == m for c in comparisons)]
    if not metrics:
        return ["No baseline (`ce` or `ce_2x`) to compare with: no verdict."]
    methods = list(dict.fromkeys(r.method for r in records))
    best = {metric: at_best(records, metric) for metric in metrics}
    lines = [
        "Each method against `ce` and `ce_2x` (CE for as many forward/backward passes as COT), paired by seed "
        "(same initial weights and data order): mean difference (method − baseline) [95% interval], then the "
        "verdict: better or worse when the interval excludes 0. Accuracy and ECE in points; NLL and ECE: lower is "
        "better.",
        "",
    ]
    if test_size:
        lines += [
            f"Test set: {test_size:,} examples per run; one example is {100 / test_size:.2f} pts of accuracy.",
            "",
        ]
    for metric in metrics:
        info = metric_info(metric)
        if info.best is not None and len(methods) > 1 and best[metric] >= set(methods):
            lines += [
                f"{WARNING} All methods at {format_level(info.best, metric)} {info.label} on the test set, on every "
                f"seed: nothing to separate on {info.label}.",
                "",
            ]
    found: dict[tuple[str, str], dict[str, PairedComparison]] = {}
    for c in comparisons:
        found.setdefault((c.method, c.baseline), {})[c.metric] = c
    warned = False
    for (method, baseline), by_metric in found.items():
        items = [verdict_item(by_metric[m], records, test_size, best[m]) for m in metrics if m in by_metric]
        warned = warned or any(WARNING in item for item in items)
        lines.append(f"- `{method}` vs `{baseline}`: " + "; ".join(items) + ".")
    lines.append("")
    accuracy = best.get("test_acc", set())
    for method in dict.fromkeys(c.method for c in comparisons if c.method not in BASELINES):
        verdicts = {c.baseline: c.verdict for c in comparisons if c.method == method and c.metric == "test_acc"}
        if "ce" in verdicts and {method, "ce"} <= accuracy:
            lines.append(f"Reading: `{method}` and `ce` are both at 100% accuracy on every seed: nothing to separate.")
        else:
            lines.append(f"Reading: {reading(method, verdicts)}")
    if warned:
        lines += ["", WARNINGS_NOTE]
    return lines


WARNINGS_NOTE = (
    f"{WARNING} *small test set*: the test set's own 95% sampling margin of the accuracy, "
    "1.96·√(p(1−p)/N) at the pair's mean accuracy p over N test examples, exceeds "
    f"{RESOLUTION * 100:g} point: the interval is over seeds on this one test set and leaves that margin out. "
    f"*wide interval*: the 95% interval is wider than ±{RESOLUTION * 100:g} point, too wide to separate gains "
    "of about a point; more seeds narrow it."
)


def reading(method: str, verdicts: dict[str, str]) -> str:
    """One sentence from the accuracy verdicts of ``method`` against ``ce`` and ``ce_2x``."""
    if "ce" not in verdicts:
        return f"no `ce` runs to compare `{method}` with."
    if verdicts["ce"] == WORSE:
        return f"`{method}` is less accurate than `ce` on these seeds."
    if verdicts["ce"] == NO_DIFFERENCE:
        return f"`{method}` and `ce` are equally accurate on these seeds: no difference."
    if verdicts["ce"] != BETTER:
        return f"the accuracy of `{method}` and `ce` is not separable on these seeds."
    if "ce_2x" not in verdicts:
        return f"`{method}` is more accurate than `ce`; without `ce_2x` the extra passes may explain it."
    if verdicts["ce_2x"] == BETTER:
        return f"`{method}` is more accurate than both `ce` and `ce_2x`: more passes alone do not explain the gain."
    return f"`{method}` is more accurate than `ce` but not than `ce_2x`: the gain may come from the extra passes."


def summary_phrase(found: dict[tuple[str, str], PairedComparison]) -> str:
    """A method's verdicts in a few words, for a summary table: ``found`` maps (baseline, metric)
    to its comparison, e.g. "accuracy higher vs CE, not separable vs CE 2×; NLL better than CE 2×"."""
    words = {BETTER: "higher", WORSE: "lower", NO_DIFFERENCE: "equal"}

    def verdict(baseline: str, metric: str) -> str:
        c = found.get((baseline, metric))
        return "missing" if c is None else c.verdict

    accuracy = (
        f"accuracy {words.get(verdict('ce', 'test_acc'), 'not separable')} vs CE, "
        f"{words.get(verdict('ce_2x', 'test_acc'), 'not separable')} vs CE 2×"
    )
    nll = verdict("ce_2x", "test_nll")
    return accuracy + {BETTER: "; NLL better than CE 2×", WORSE: "; NLL worse than CE 2×"}.get(nll, "")
