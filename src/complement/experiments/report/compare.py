"""``write_report``: from run records to ``report.md``, figures and a console table.

The CLI calls it once per comparison::

    paths = write_report(records, "runs/compare", task_name="mnist_mlp", command=" ".join(sys.argv))
    print(paths.console_table)

It checks the records (non-empty, one task, one class count, predictions files present),
then writes into ``out_dir``: ``records.json``, ``figures/*.png`` and ``report.md``, each
file whole or not at all (``report.md`` last, so that only a finished report exists).
``report.md`` opens with the verdict (:mod:`.verdict`) and the forest plot of the paired
differences, then the facts of the runs (:mod:`.facts`), the tables and the other figures.
Records with a robust evaluation add its block to the verdict, a section and the figure of
accuracy against ε (:mod:`.robust`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import figures as fig
from .facts import facts_lines
from .markdown import equal_compute_note, write_markdown
from .records import RunRecord, load_predictions, save_records, validate_records
from .robust import (
    FIGURE_NAME,
    plot_robust_accuracy,
    robust_comparisons,
    robust_records,
    robust_section,
    robust_verdict_lines,
)
from .robust import robust_table as robust_accuracy_table
from .statistics import HEADLINE_METRICS, paired_comparisons
from .tables import (
    DEFAULT_FRACTION,
    Stat,
    by_method,
    convergence_table,
    convergence_target,
    final_passes,
    final_steps,
    paired_table,
    render_console,
    results_table,
)
from .verdict import WARNINGS_NOTE, test_set_size, verdict_lines

FIGURES_DIR = "figures"
REPORT_FILE = "report.md"


@dataclass
class ReportPaths:
    """What :func:`write_report` wrote, and the tables as console text."""

    report: Path
    records: Path
    figures: dict[str, Path] = field(default_factory=dict)
    console_table: str = ""


def pooled_summaries(
    groups: dict[str, list[RunRecord]], rows: dict[str, int] | None = None
) -> dict[str, fig.ProbabilitySummary]:
    """Per method, the summary of its seeds' test predictions, loading one file at a time.

    Methods without any predictions file are left out of the prediction figures. ``rows``, if
    given, receives each record's number of scored test predictions (by its label)."""
    pooled: dict[str, fig.ProbabilitySummary] = {}
    class_counts: dict[int, str] = {}
    for method, group in groups.items():
        for record in group:
            if record.predictions_path is None:
                continue
            probs, target = load_predictions(record)
            if rows is not None:
                rows[record.label] = int(probs.shape[0])
            class_counts.setdefault(probs.shape[1], record.label)
            if len(class_counts) > 1:
                detail = ", ".join(f"{label}: {count}" for count, label in class_counts.items())
                raise ValueError(f"records have different class counts ({detail}); they are not the same task")
            summary = fig.summarize(probs, target)
            del probs, target
            pooled[method] = pooled[method].merge(summary) if method in pooled else summary
    return pooled


def write_report(
    records: list[RunRecord],
    out_dir: str | os.PathLike,
    task_name: str,
    command: str,
    *,
    baseline: str = "ce",
    fraction: float = DEFAULT_FRACTION,
    date: datetime | None = None,
    sections: list[str] | None = None,
) -> ReportPaths:
    """Write the comparison of ``records`` into ``out_dir``.

    Args:
        records: one :class:`RunRecord` per (method, seed), all of the task ``task_name``.
        out_dir: the compare directory (created if needed).
        task_name: shown in the title; records with another ``task`` are refused.
        command: the command line that produced the runs, quoted in the report.
        baseline: the method whose best mean ``val_acc`` sets the convergence target.
        fraction: the target is this fraction of it.
        date: the report's date (default: now).
        sections: markdown lines with their headings, shown before the robust accuracy (the
            comparison's learning-rate tuning).
    """
    validate_records(records)
    other = sorted({r.task for r in records if r.task is not None and r.task != task_name})
    if other:
        raise ValueError(f"records of task(s) {other} passed to a report for task {task_name!r}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # report.md is written last and only exists for a finished report of these records: an
    # interrupted one never leaves a report that looks complete (figures and records are
    # each written whole, and rewritten on the next attempt).
    (out / REPORT_FILE).unlink(missing_ok=True)
    groups = by_method(records)
    styles = fig.method_styles(list(groups))
    target, used_baseline = convergence_target(records, baseline, fraction)

    scored: dict[str, int] = {}
    pooled = pooled_summaries(groups, scored)  # raises on missing files and class-count mismatches
    comparisons = paired_comparisons(records)
    written: dict[str, tuple[str, Path]] = {}
    if any(c.metric in HEADLINE_METRICS for c in comparisons):
        written["forest"] = (
            "Paired differences over seeds (method − baseline): mean and 95% interval; the line at 0 is no difference",
            fig.plot_forest(comparisons, out / FIGURES_DIR / "forest.png", styles=styles),
        )
    if pooled:
        eces = {m: [r.test["test_ece"] for r in group if "test_ece" in r.test] for m, group in groups.items()}
        per_seed_ece = {m: Stat.of(values).mean for m, values in eces.items() if values}
        written["non_target_probabilities"] = (
            "Output probabilities for models trained with and without COT",
            fig.plot_non_target_probabilities(pooled, out / FIGURES_DIR / "non_target_probabilities.png", styles),
        )
        written["reliability"] = (
            "Reliability diagrams",
            fig.plot_reliability(
                pooled, out / FIGURES_DIR / "reliability.png", styles=styles, per_seed_ece=per_seed_ece
            ),
        )
    written["learning_curves"] = (
        "Learning curves",
        fig.plot_learning_curves(groups, out / FIGURES_DIR / "learning_curves.png", target, styles),
    )

    results = results_table(records)
    paired = paired_table(comparisons)
    conv = convergence_table(records, target, used_baseline, fraction)
    note = equal_compute_note(final_passes(records), comparisons, final_steps(records))
    verdict = verdict_lines(records, comparisons, test_set_size(records, scored))
    robust = robust_comparisons(records)
    robust_verdict, warned = robust_verdict_lines(records, robust)
    if robust_verdict:
        verdict += ["", *robust_verdict] + (["", WARNINGS_NOTE] if warned and WARNINGS_NOTE not in verdict else [])
    sections = list(sections or [])
    if robust_records(records):
        png = plot_robust_accuracy(records, out / FIGURES_DIR / FIGURE_NAME, styles)
        caption = "Worst-case accuracy against ε, per method: mean over seeds with a ±1 std band, seeds as points"
        sections += robust_section(records, robust, (caption, Path(os.path.relpath(png, out)).as_posix()))
    facts = facts_lines(records, scored)
    missing = [r.label for r in records if r.predictions_path is None]
    extra = (
        [f"Runs without test predictions (left out of the prediction figures): {', '.join(missing)}."]
        if missing
        else []
    )
    records_path = save_records(records, out)
    others = {name: entry for name, entry in written.items() if name != "forest"}
    lead = written.get("forest")
    report = write_markdown(
        out / REPORT_FILE, task_name, command, results, paired, conv, note, others, date, extra,
        verdict=verdict, lead_figure=lead, facts=facts, sections=sections,
    )  # fmt: skip
    console = render_console(results) + "\n\n" + render_console(paired) + "\n\n" + render_console(conv)
    pngs = {name: png for name, (_, png) in written.items()}
    if robust_records(records):
        console += "\n\n" + render_console(robust_accuracy_table(records))
        pngs["robust_accuracy"] = out / FIGURES_DIR / FIGURE_NAME
    return ReportPaths(report, records_path, pngs, console)
