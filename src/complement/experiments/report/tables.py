"""Summary tables of a comparison: test metrics and convergence speed per method.

- :func:`summarize_test`: mean ± std over seeds of every ``test_*`` metric, per method.
- :func:`convergence_target` / :func:`convergence`: the first epoch, and the number of
  training passes, at which ``val_acc`` reaches a target (by default 99% of the best
  seed-mean ``val_acc`` of the CE baseline), mean ± std over the seeds that reach it.
- :func:`results_table` / :func:`convergence_table` turn them into a :class:`Table`,
  rendered by :func:`render_markdown` or :func:`render_console` (fixed-width text).

The standard deviation is the sample one (``ddof=1``); with one seed there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...metrics import METRIC_NAMES
from .records import ROBUST_PREFIX, RunRecord
from .statistics import PairedComparison, format_difference, format_p, metric_info

PREFERRED_ORDER = ("ce", "ce_2x", "cot")
METRIC_LABELS = {
    "acc": "Accuracy",
    "precision": "Precision (macro)",
    "nll": "NLL",
    "ece": "ECE",
    "complement_entropy": "Complement entropy",
}
DEFAULT_FRACTION = 0.99
NOT_REACHED = "not reached"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of ``n`` values (``std`` is None for ``n < 2``)."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values) -> Stat:
        values = np.asarray(list(values), dtype=float)
        if values.size == 0:
            raise ValueError("no values to summarize")
        std = float(values.std(ddof=1)) if values.size > 1 else None
        return cls(float(values.mean()), std, int(values.size))

    def format(self, digits: int = 4) -> str:
        if self.std is None or (digits == 0 and round(self.std) == 0):  # counts: "2000", not "2000 ± 0"
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class Table:
    """Headers and rows of already-formatted cells."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""


def method_order(records: list[RunRecord]) -> list[str]:
    """Methods with the baselines and COT first, then the others in order of appearance."""
    seen = list(dict.fromkeys(record.method for record in records))
    return [m for m in PREFERRED_ORDER if m in seen] + [m for m in seen if m not in PREFERRED_ORDER]


def by_method(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {method: [] for method in method_order(records)}
    for record in records:
        groups[record.method].append(record)
    for group in groups.values():
        group.sort(key=lambda record: record.seed)
    return groups


def metric_keys(records: list[RunRecord]) -> list[str]:
    """``test_*`` keys present in any record: the standard metrics first, then the rest sorted.

    ``test_loss`` is left out when ``test_nll`` is there (the same cross-entropy), and the robust
    accuracies (``test_robust_acc_*``), which have a table of their own (:mod:`.robust`)."""
    present = {key for record in records for key in record.test if not key.startswith(ROBUST_PREFIX)}
    if "test_nll" in present:
        present.discard("test_loss")
    standard = [f"test_{name}" for name in METRIC_NAMES if f"test_{name}" in present]
    return standard + sorted(present - set(standard))


def summarize_test(records: list[RunRecord]) -> dict[str, dict[str, Stat]]:
    """``{method: {test_key: Stat}}`` over the seeds that report the key."""
    summary: dict[str, dict[str, Stat]] = {}
    for method, group in by_method(records).items():
        summary[method] = {}
        for key in metric_keys(records):
            values = [float(record.test[key]) for record in group if key in record.test]
            if values:
                summary[method][key] = Stat.of(values)
    return summary


def final_passes(records: list[RunRecord]) -> dict[str, Stat]:
    """Training passes at the end of the last epoch, per method."""
    return {method: Stat.of(r.history[-1]["passes"] for r in group) for method, group in by_method(records).items()}


def final_steps(records: list[RunRecord]) -> dict[str, Stat]:
    """Optimizer steps a run took, per method (records from before they were counted are left out)."""
    steps = {}
    for method, group in by_method(records).items():
        counted = [r.facts["optimizer_steps"] for r in group if isinstance((r.facts or {}).get("optimizer_steps"), int)]
        if counted:
            steps[method] = Stat.of(counted)
    return steps


def mean_curve(records: list[RunRecord], key: str = "val_acc") -> dict[int, tuple[float, float | None, float]]:
    """``{epoch: (mean, std, mean passes)}`` of ``key`` over the records that have that epoch."""
    per_epoch: dict[int, list[tuple[float, float]]] = {}
    for record in records:
        for entry in record.history:
            if key in entry and entry[key] is not None:
                per_epoch.setdefault(int(entry["epoch"]), []).append((float(entry[key]), float(entry["passes"])))
    curve = {}
    for epoch in sorted(per_epoch):
        stat = Stat.of(value for value, _ in per_epoch[epoch])
        curve[epoch] = (stat.mean, stat.std, float(np.mean([passes for _, passes in per_epoch[epoch]])))
    return curve


def convergence_target(
    records: list[RunRecord], baseline: str = "ce", fraction: float = DEFAULT_FRACTION
) -> tuple[float, str]:
    """``(fraction * best seed-mean val_acc of the baseline, baseline used)``.

    The baseline's ``val_acc`` is averaged over seeds epoch by epoch; its best epoch sets
    the bar. Without a ``baseline`` run, the first method in :func:`method_order` is used."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    groups = by_method(records)
    if not groups:
        raise ValueError("no records")
    used = baseline if baseline in groups else next(iter(groups))
    curve = mean_curve(groups[used])
    if not curve:
        raise ValueError(f"the {used!r} runs have no val_acc to set a convergence target")
    return fraction * max(mean for mean, _, _ in curve.values()), used


def first_reaching(history: list[dict], target: float, key: str = "val_acc") -> tuple[int, float] | None:
    """``(epoch, passes)`` of the first history entry with ``key >= target``; None if none."""
    for entry in history:
        value = entry.get(key)
        if value is not None and not math.isnan(float(value)) and float(value) >= target:
            return int(entry["epoch"]), float(entry["passes"])
    return None


@dataclass
class Convergence:
    """When one method's seeds reach the target: stats over the seeds that do."""

    method: str
    seeds: int
    reached: int
    epoch: Stat | None
    passes: Stat | None
    per_seed: dict[int, tuple[int, float] | None]

    def cell(self, which: str, digits: int) -> str:
        stat = self.epoch if which == "epoch" else self.passes
        if stat is None:
            return NOT_REACHED
        text = stat.format(digits)
        return text if self.reached == self.seeds else f"{text} ({self.reached}/{self.seeds} seeds)"


def convergence(records: list[RunRecord], target: float) -> dict[str, Convergence]:
    """Per method, the first epoch and pass count at which ``val_acc >= target``."""
    result = {}
    for method, group in by_method(records).items():
        per_seed = {record.seed: first_reaching(record.history, target) for record in group}
        hits = [hit for hit in per_seed.values() if hit is not None]
        result[method] = Convergence(
            method=method,
            seeds=len(group),
            reached=len(hits),
            epoch=Stat.of(epoch for epoch, _ in hits) if hits else None,
            passes=Stat.of(passes for _, passes in hits) if hits else None,
            per_seed=per_seed,
        )
    return result


def results_table(records: list[RunRecord], digits: int = 4) -> Table:
    """Method, seeds, each test metric (mean ± std), final passes, optimizer steps (when recorded: equal passes
    need not be equal steps) and, if recorded, wall time."""
    summary = summarize_test(records)
    keys = metric_keys(records)
    passes, steps = final_passes(records), final_steps(records)
    groups = by_method(records)
    with_time = any(record.wall_time_s is not None for record in records)
    headers = ["Method", "Seeds"] + [METRIC_LABELS.get(key[5:], key[5:]) for key in keys] + ["Passes"]
    headers += ["Optimizer steps"] if steps else []
    headers += ["Wall time (s)"] if with_time else []
    table = Table(headers, title="Test metrics (mean ± std over seeds)")
    for method, stats in summary.items():
        row = [method, str(len(groups[method]))]
        row += [stats[key].format(digits) if key in stats else "-" for key in keys]
        row.append(passes[method].format(0))
        if steps:
            row.append(steps[method].format(0) if method in steps else "-")
        if with_time:
            times = [r.wall_time_s for r in groups[method] if r.wall_time_s is not None]
            row.append(Stat.of(times).format(1) if times else "-")
        table.rows.append(row)
    return table


def convergence_table(
    records: list[RunRecord], target: float, baseline: str = "ce", fraction: float = DEFAULT_FRACTION
) -> Table:
    """Epochs and passes to reach ``target`` val_acc, per method."""
    title = (
        f"Convergence: first epoch with val_acc >= {target:.4f} ({fraction:.0%} of the best mean {baseline} val_acc)"
    )
    table = Table(["Method", "Seeds reaching", "Epoch", "Passes"], title=title)
    for method, conv in convergence(records, target).items():
        table.rows.append([method, f"{conv.reached}/{conv.seeds}", conv.cell("epoch", 1), conv.cell("passes", 0)])
    return table


PAIRED_TITLE = "Paired differences over seeds (method − baseline; accuracy and ECE in points)"


def paired_table(comparisons: list[PairedComparison], title: str = PAIRED_TITLE) -> Table:
    """One row per (method, baseline): each metric's mean paired difference with its 95% interval,
    p-value and verdict."""
    metrics = list(dict.fromkeys(c.metric for c in comparisons))
    headers = ["Method", "vs", "Seeds"]
    for metric in metrics:
        headers += [f"Δ {METRIC_LABELS.get(metric[5:]) or metric_info(metric).label} [95% CI]", "p", "verdict"]
    table = Table(headers, title=title)
    rows: dict[tuple[str, str], dict[str, PairedComparison]] = {}
    for comparison in comparisons:
        rows.setdefault((comparison.method, comparison.baseline), {})[comparison.metric] = comparison
    for (method, baseline), by_metric in rows.items():
        n = max(c.n for c in by_metric.values())
        row = [method, baseline, str(n)]
        for metric in metrics:
            c = by_metric.get(metric)
            if c is None:
                row += ["-", "-", "-"]
                continue
            if c.interval is None:
                row += [format_difference(c.mean, metric), "n/a", c.short_verdict()]
                continue
            row += [f"{format_difference(c.mean, metric)} {c.interval_text()}", format_p(c.p_value), c.short_verdict()]
        table.rows.append(row)
    return table


def render_markdown(table: Table) -> str:
    """A GitHub-flavoured markdown table (title not included)."""

    def line(cells):
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = ["---"] + ["---:"] * (len(table.headers) - 1)  # numbers right-aligned
    return "\n".join([line(table.headers), "| " + " | ".join(align) + " |"] + [line(row) for row in table.rows])


def render_console(table: Table) -> str:
    """Fixed-width text: a title, the headers, a rule, and left (names) / right (numbers) aligned rows."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(table.headers, *table.rows)]

    def line(cells):
        parts = [cells[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = ([table.title] if table.title else []) + [line(table.headers), rule] + [line(row) for row in table.rows]
    return "\n".join(lines)
