"""``report.md``: the comparison written up as markdown.

Sections: the title (task, date), the command that produced it, the test-metric table,
the convergence table, the equal-compute note and the figures (relative links).

The equal-compute note states what the numbers show, generated from them: COT takes two
forward/backward passes per batch, so a gain over CE could come from the extra passes
rather than from the complement objective. ``ce_2x`` (CE with as many passes as COT)
separates the two; the note compares each method's mean test accuracy with ``ce`` and
``ce_2x`` and says whether it is above or below by more than one standard deviation.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from .._atomic import write_text
from .tables import Stat, Table, render_markdown

BASELINES = ("ce", "ce_2x")
KEY = "test_acc"


def compare(a: str, sa: Stat, b: str, sb: Stat) -> tuple[str, int]:
    """A sentence comparing two mean accuracies, and +1 / -1 / 0 (above / below / within one std)."""
    diff = sa.mean - sb.mean
    stds = [s for s in (sa.std, sb.std) if s is not None]
    spread = max(stds) if stds else None
    head = f"`{a}` {sa.format()} vs `{b}` {sb.format()}: difference {diff:+.4f}"
    if spread is None:
        return f"{head}; single seeds, so no standard deviation to judge it by.", 0
    if abs(diff) > spread:
        side = "above" if diff > 0 else "below"
        return f"{head}, {side} by more than one standard deviation ({spread:.4f}).", 1 if diff > 0 else -1
    return f"{head}, within one standard deviation ({spread:.4f}): not distinguishable with these seeds.", 0


def equal_compute_note(summary: dict[str, dict[str, Stat]], passes: dict[str, Stat]) -> str:
    """The "Equal-compute baseline" section body, generated from the numbers."""
    lines = [
        "COT takes two forward/backward passes per training batch (a cross-entropy step, then a complement-entropy "
        "step); CE takes one. A gain of COT over CE can therefore come from the objective or just from the extra "
        "passes. `ce_2x` is CE trained for as many passes as COT: beating `ce` shows that COT helps over the "
        "usual schedule; beating `ce_2x` as well shows that the gain is not explained by more steps.",
        "",
        "Training passes per run (mean): " + ", ".join(f"`{m}` {s.format(0)}" for m, s in passes.items()) + ".",
        "",
    ]
    if (
        "cot" in passes
        and "ce_2x" in passes
        and abs(passes["cot"].mean - passes["ce_2x"].mean) > 0.01 * passes["cot"].mean
    ):
        lines += [
            f"Note: `ce_2x` ran {passes['ce_2x'].mean:.0f} passes and `cot` {passes['cot'].mean:.0f}; "
            "the budgets differ, so `ce_2x` is not an exact equal-compute baseline here.",
            "",
        ]
    have = {method for method, stats in summary.items() if KEY in stats}
    others = [m for m in summary if m not in BASELINES and m in have]
    if not others:
        return "\n".join(lines + [f"No method besides the baselines reports `{KEY}`; nothing to compare."])
    if "ce_2x" not in have:
        lines += ['No `ce_2x` runs: these results cannot separate "COT helps" from "more steps help".', ""]
    for method in others:
        verdicts = {}
        for base in BASELINES:
            if base in have:
                sentence, verdicts[base] = compare(method, summary[method][KEY], base, summary[base][KEY])
                lines.append(f"- Test accuracy, {sentence}")
        lines.append(f"- Reading: {_reading(method, verdicts)}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _reading(method: str, verdicts: dict[str, int]) -> str:
    if "ce" not in verdicts:
        return f"no `ce` runs to compare `{method}` with."
    if verdicts["ce"] < 1:
        return f"`{method}` is not above `ce` by more than one standard deviation on these runs."
    if "ce_2x" not in verdicts:
        return f"`{method}` is above `ce`; without `ce_2x` the extra passes may explain it."
    if verdicts["ce_2x"] == 1:
        return f"`{method}` is above both `ce` and `ce_2x`: the gain is not explained by the extra passes alone."
    return f"`{method}` is above `ce` but not above `ce_2x`: the numbers do not separate `{method}` from more steps."


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def write_markdown(
    path: str | os.PathLike,
    task_name: str,
    command: str,
    results: Table,
    convergence: Table,
    note: str,
    figures: dict[str, tuple[str, Path]],
    date: datetime | None = None,
    extra: list[str] | None = None,
) -> Path:
    """Write ``report.md``; ``figures`` maps a name to ``(caption, png path)``."""
    path = Path(path)
    date = date or datetime.now()
    parts = [
        f"# COT comparison: {task_name}",
        "",
        f"Generated {date:%Y-%m-%d %H:%M}.",
        "",
        "Command:",
        "",
        "```bash",
        command.strip() or "(not recorded)",
        "```",
        "",
        f"## {results.title}",
        "",
        render_markdown(results),
        "",
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
