"""``report.md``: the comparison written up as markdown.

Sections: the title (task, date); the verdict (:mod:`.verdict`: each method against
``ce`` and ``ce_2x`` in plain words, with warnings; with a robust evaluation, the worst-case
robust accuracy per ε too) and the forest plot of the paired differences; the runs (the
command, then :mod:`.facts`: data sizes, classes, resolved settings, versions, machine); the
test-metric table, the paired differences (:mod:`.statistics`), the robust accuracy when the
runs have one (:mod:`.robust`: table, paired differences, masking checks, the ε figure), the
convergence table, the equal-compute note and the other figures (relative links).

The equal-compute note states what the numbers show, generated from them: COT takes two
forward/backward passes per batch, so a gain over CE could come from the extra passes
rather than from the complement objective. ``ce_2x`` (CE with as many passes as COT)
separates the two. For each method the note gives, against ``ce`` and ``ce_2x``, the
mean paired difference of test accuracy, NLL and ECE with its 95% interval, p-value and
verdict ("better", "worse", or "not separable with n seeds" and the seeds for 80% power
at the observed difference and spread), then a one-line reading of the accuracy verdicts.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from ..._atomic import write_text
from .statistics import BASELINES, PairedComparison
from .tables import Stat, Table, render_markdown
from .verdict import reading

KEY = "test_acc"
VERDICT_TITLE = "Verdict: does COT help?"
FACTS_TITLE = "The runs"


def _differ(counts: dict[str, Stat]) -> bool:
    """``cot`` and ``ce_2x`` both counted, more than 1% apart."""
    if "cot" not in counts or "ce_2x" not in counts:
        return False
    return abs(counts["cot"].mean - counts["ce_2x"].mean) > 0.01 * counts["cot"].mean


def equal_compute_note(
    passes: dict[str, Stat], comparisons: list[PairedComparison], steps: dict[str, Stat] | None = None
) -> str:
    """The "Equal-compute baseline" section body, generated from the numbers."""
    lines = [
        "COT takes two forward/backward passes per training batch (a cross-entropy step, then a complement-entropy "
        "step); CE takes one. A gain of COT over CE can therefore come from the objective or just from the extra "
        "passes. `ce_2x` is CE trained for as many passes as COT: beating `ce` shows that COT helps over the "
        "usual schedule; beating `ce_2x` as well shows that the gain is not explained by more steps. Runs with the "
        "same seed start from the same weights and data order, so they are compared in pairs.",
        "",
        "Training passes per run (mean): " + ", ".join(f"`{m}` {s.format(0)}" for m, s in passes.items()) + ".",
        "",
    ]
    if steps:
        lines += [
            "Optimizer steps per run (mean): " + ", ".join(f"`{m}` {s.format(0)}" for m, s in steps.items()) + ". "
            "COT steps twice per batch (once per phase), `ce_2x` once per batch over twice the epochs, so the two "
            "match in steps as well as in passes; an adversarial method's attack adds passes, not steps.",
            "",
        ]
        if _differ(steps):
            lines += [
                f"Note: `ce_2x` took {steps['ce_2x'].mean:.0f} optimizer steps and `cot` {steps['cot'].mean:.0f}: they "
                "differ in optimizer steps as well as in passes.",
                "",
            ]
    if _differ(passes):
        lines += [
            f"Note: `ce_2x` ran {passes['ce_2x'].mean:.0f} passes and `cot` {passes['cot'].mean:.0f}; "
            "the budgets differ, so `ce_2x` is not an exact equal-compute baseline here.",
            "",
        ]
    methods = list(dict.fromkeys(c.method for c in comparisons if c.method not in BASELINES))
    if not methods:
        return "\n".join(lines + ["No method besides the baselines to compare."])
    if not any(c.baseline == "ce_2x" for c in comparisons):
        lines += ['No `ce_2x` runs: these results cannot separate "COT helps" from "more steps help".', ""]
    for method in methods:
        mine = [c for c in comparisons if c.method == method]
        lines += [f"- {c.sentence()}" for c in mine]
        verdicts = {c.baseline: c.verdict for c in mine if c.metric == KEY}
        lines += [f"- Reading: {reading(method, verdicts)}", ""]
    return "\n".join(lines).rstrip()


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def write_markdown(
    path: str | os.PathLike,
    task_name: str,
    command: str,
    results: Table,
    paired: Table,
    convergence: Table,
    note: str,
    figures: dict[str, tuple[str, Path]],
    date: datetime | None = None,
    extra: list[str] | None = None,
    *,
    verdict: list[str] | None = None,
    lead_figure: tuple[str, Path] | None = None,
    facts: list[str] | None = None,
    sections: list[str] | None = None,
) -> Path:
    """Write ``report.md``; ``figures`` maps a name to ``(caption, png path)``.

    ``verdict`` (lines) and ``lead_figure`` (the forest plot) open the report, under the title;
    ``facts`` (lines) follow with the command, then the tables, the notes and the other figures.
    ``sections`` (markdown lines with their headings, e.g. the robust accuracy) follow the
    paired differences."""
    path = Path(path)
    date = date or datetime.now()
    parts = [f"# COT comparison: {task_name}", "", f"Generated {date:%Y-%m-%d %H:%M}.", ""]
    if verdict is not None or lead_figure is not None:
        parts += [f"## {VERDICT_TITLE}", ""] + list(verdict or []) + [""]
        if lead_figure is not None:
            caption, png = lead_figure
            parts += [f"![{caption}]({_link(png, path.parent)})", "", f"*{caption}.*", ""]
    parts += [f"## {FACTS_TITLE}", "", "Command:", "", "```bash", command.strip() or "(not recorded)", "```", ""]
    parts += list(facts or []) + ([""] if facts else [])
    parts += [
        f"## {results.title}",
        "",
        render_markdown(results),
        "",
        f"## {paired.title}",
        "",
        render_markdown(paired) if paired.rows else "No baseline (`ce` or `ce_2x`) to compare with.",
        "",
        "Δ is the mean over seeds of (method − baseline) for runs with the same seed; the interval is a 95% "
        "t-interval (with 10 or more seeds the equal-compute note also gives a bootstrap interval); p is the paired "
        "t-test's; n.s. = not separable, with the seeds a paired t-test (α 0.05) needs for 80% power at the observed "
        "difference and spread; no difference = the same "
        "mean on the paired seeds.",
        "",
        *(sections or []),
        f"## {convergence.title}",
        "",
        render_markdown(convergence),
        "",
        '"Passes" counts forward+backward passes over training batches: one per batch for a CE epoch, two for COT.',
        "",
        "## Equal-compute baseline",
        "",
        note,
        "",
    ]
    if extra:
        parts += extra + [""]
    if figures:
        parts += ["## Figures", ""]
        for caption, png in figures.values():
            parts += [f"### {caption}", "", f"![{caption}]({_link(png, path.parent)})", ""]
    write_text(path, "\n".join(parts).rstrip() + "\n")
    return path


TUNING_TITLE = "Learning-rate tuning"


def tuning_section(
    settings: dict, results: dict[str, dict[str, list[float | None]]], chosen: dict[str, float]
) -> list[str]:
    """The "Learning-rate tuning" section: every rate's validation result per method (mean over the tuning seeds;
    ``diverged`` for a run that did), the rate chosen (bold), and the budget."""
    rates = [f"{rate:g}" for rate in settings["lr"]]
    metric, seeds = settings["metric"], settings["seeds"]
    table = Table(["Method", *[f"lr {rate}" for rate in rates], "chosen"], title=TUNING_TITLE)
    runs = 0
    for method, by_rate in results.items():
        row = [method]
        for rate in rates:
            values = by_rate.get(rate, [])
            runs += len(values)
            finite = [v for v in values if v is not None]  # None: the run diverged
            cell = "-" if not values else "diverged" if not finite else Stat.of(finite).format(4)
            if finite and len(finite) < len(values):
                cell += f" ({len(values) - len(finite)} diverged)"
            row.append(f"**{cell}**" if rate == f"{chosen.get(method, float('nan')):g}" else cell)
        row.append(f"{chosen[method]:g}" if method in chosen else "-")
        table.rows.append(row)
    return [
        f"## {TUNING_TITLE}",
        "",
        f"Each method's learning rate was chosen on the **validation** split before the paired runs: the rate with "
        f"the best mean `{metric}` at the end of training over {seeds} tuning seed{'s' * (seeds > 1)} "
        f"({'seed 0' if seeds == 1 else f'seeds 0-{seeds - 1}'}; a rate with a diverged run scores worst; ties: the "
        "smaller rate); the test split played no part. The paired "
        "runs train each method at its own rate (Bouthillier et al., MLSys 2021, tune every method; Dodge et al., "
        f"EMNLP 2019, report the budget). Budget: {runs} tuning runs ({len(rates)} rates × {len(results)} methods × "
        f"{seeds} seed{'s' * (seeds > 1)}), in `tune/`.",
        "",
        render_markdown(table),
        "",
    ]
