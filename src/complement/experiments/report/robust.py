"""Robust accuracy in ``report.md``: the verdict's block, the section, and the ε figure.

Read from each record's ``robust`` (see :mod:`.records`: the settings, the results per
attack and ε, the masking checks) and its ``test_robust_acc_*`` keys (the paired statistics,
:func:`~.statistics.robust_metric`). The number to read is the per-example **worst case**
over the attacks at each ε (an example counts as robust only if it survives every attack),
so the verdict and the paired table compare that one; the table of accuracies gives each
attack too.

A masking check that failed (:func:`complement.robustness.masking_checks`) stands next to
the numbers it concerns: in the verdict line of the method and ε (⚠), in the table's cell,
and in the list of checks with the run, the numbers behind it and what it means.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .figures import _save, method_styles
from .records import WORST, RunRecord, format_eps, robust_key
from .statistics import PairedComparison, paired_comparisons
from .tables import Stat, Table, by_method, paired_table, render_markdown
from .verdict import WARNING, at_best, verdict_item, warnings_for

ROBUST_TITLE = "Robust accuracy"
FIGURE_NAME = "robust_accuracy.png"
ATTACK_NAMES = {
    "fgsm": "FGSM (one signed-gradient step)",
    "pgd": "PGD on cross-entropy ({steps} steps of 2.5ε/{steps}, random start)",
    "pgd_dlr": "PGD on the DLR margin loss ({steps} steps, random start)",
    "square": "Square (black-box, no gradients; ART)",
    "autoattack": "ART's AutoAttack (APGD-CE, APGD-DLR, Square, one restart each: not the standard version)",
}
# What a failed check means, by the start of its name (complement.robustness.masking_checks).
CHECK_MEANINGS = {
    "accuracy falls at eps=1": "at ε 1 any image can be reached, so accuracy must fall to about 0; a model that "
    "still classifies there has gradients that mislead the attacks, and its robust accuracy is overstated",
    "PGD at least as strong as FGSM": "many small steps of the same ascent must find at least what one step finds; "
    "a weaker PGD means gradients that mislead the iterative attack",
    "cross-entropy finds what the margin loss finds": "PGD on cross-entropy found less than on the margin loss: the "
    "softmax saturates or is flattened (as a complement loss may do), so CE-only PGD overstates robustness; the "
    "worst case counts both",
    "gradients find what the black-box Square finds": "the black-box attack found more than the gradient attacks: "
    "gradient masking",
}


def robust_records(records: list[RunRecord]) -> list[RunRecord]:
    """The records with a robust evaluation."""
    return [r for r in records if isinstance(r.robust, dict) and r.robust.get("results")]


def _accuracies(record: RunRecord) -> dict[tuple[str, float], float]:
    """``(attack, eps) -> accuracy`` of one record (``("clean", 0.0)`` included)."""
    found = {}
    for item in record.robust.get("results", []):
        if item.get("total"):
            found[(str(item["attack"]), float(item["eps"]))] = item["correct"] / item["total"]
    return found


def _settings(records: list[RunRecord]) -> list[dict[str, Any]]:
    return [r.robust.get("settings") or {} for r in robust_records(records)]


def robust_eps(records: list[RunRecord]) -> list[float]:
    """The radii asked for (the masking check's ε 1 only when asked), in order."""
    return sorted({float(e) for s in _settings(records) for e in s.get("eps", [])})


def attacks_run(records: list[RunRecord]) -> list[str]:
    """The attacks of any record, in the order given."""
    return list(dict.fromkeys(str(a) for s in _settings(records) for a in s.get("attacks", [])))


def attacked_examples(records: list[RunRecord]) -> int | None:
    """The test examples attacked per run (the smallest count when runs differ); None without any."""
    counts = [int(r.robust["examples"]) for r in robust_records(records) if r.robust.get("examples")]
    return min(counts) if counts else None


def worst_keys(records: list[RunRecord]) -> list[str]:
    """The worst-case keys the records hold, by ε: the metrics of the verdict and the paired table."""
    keys = [robust_key(WORST, e) for e in robust_eps(records)]
    return [k for k in keys if any(k in r.test for r in records)]


def robust_comparisons(records: list[RunRecord]) -> list[PairedComparison]:
    """Every method against ``ce`` and ``ce_2x`` on the worst-case robust accuracy at each ε."""
    return paired_comparisons(records, metrics=tuple(worst_keys(records)))


def _matches(check: dict[str, Any], eps: float | None) -> bool:
    """Whether ``check`` concerns ``eps`` (a check without an ε, as the one at ε 1, concerns all)."""
    mine = check.get("eps")
    return eps is None or mine is None or bool(np.isclose(float(mine), eps, rtol=1e-5, atol=0.0))


def failed_checks(records: Iterable[RunRecord], eps: float | None = None) -> list[tuple[RunRecord, dict[str, Any]]]:
    """``(record, check)`` for each failed masking check (of those concerning ``eps``, if given)."""
    return [
        (r, c) for r in records for c in r.robust.get("checks", []) if not c.get("passed", True) and _matches(c, eps)
    ]


def _runs(found: list[tuple[RunRecord, dict[str, Any]]]) -> str:
    by: dict[str, list[str]] = {}
    for record, _ in found:
        by.setdefault(record.method, []).append(str(record.seed))
    return ", ".join(f"`{m}` (seed{'s' if len(s) > 1 else ''} {', '.join(dict.fromkeys(s))})" for m, s in by.items())


def masking_note(records: list[RunRecord], methods: Iterable[str], eps: float) -> str:
    """``⚠ masking check failed: ...`` for the runs of ``methods`` whose checks at ``eps`` failed, or ""."""
    found = failed_checks([r for r in records if r.method in set(methods)], eps)
    if not found:
        return ""
    names = ", ".join(dict.fromkeys(c["name"] for _, c in found))
    return f"{WARNING} masking check failed for {_runs(found)}: {names}"


def settings_text(records: list[RunRecord]) -> str:
    """The attacks, radii, steps and examples of the evaluation, in words."""
    settings = _settings(records)
    distinct = list(dict.fromkeys(repr(sorted(s.items())) for s in settings))
    steps = sorted({int(s["steps"]) for s in settings if s.get("steps") is not None})
    step_text = "/".join(str(n) for n in steps) or "?"
    names = [ATTACK_NAMES.get(a, a).format(steps=step_text) for a in attacks_run(records)]
    examples = attacked_examples(records)
    text = (
        "Threat model: L∞ perturbations of at most ε per pixel of images in [0, 1] (the task's normalization inside "
        "the attacked model, so ε means the same for every task), on the model at the end of training, in eval mode. "
        f"Attacks: {'; '.join(names)}. ε: {', '.join(format_eps(e) for e in robust_eps(records))}. "
    )
    if examples is not None:
        text += f"Attacked: the first {examples:,} test examples of each run (the same for every run). "
    text += (
        "The worst case counts an example as robust only if it survives every attack at that ε; it is the number "
        "to read (docs/robustness.md)."
    )
    if len(distinct) > 1:
        text += f" {WARNING} The runs were evaluated with different settings: compare them with care."
    return text


def robust_verdict_lines(records: list[RunRecord], comparisons: list[PairedComparison]) -> tuple[list[str], bool]:
    """The verdict's robust block (worst case per ε against ``ce`` and ``ce_2x``) and whether it warned."""
    evaluated = robust_records(records)
    if not evaluated:
        return [], False
    examples = attacked_examples(records)
    lines = [
        f"**Robust accuracy** (worst case over {', '.join(attacks_run(records))} per example, at each L∞ ε in "
        f"pixels; {f'the first {examples:,} test examples; ' if examples else ''}details under "
        f'"{ROBUST_TITLE}"):',
        "",
    ]
    if not comparisons:
        return lines + ["No baseline (`ce` or `ce_2x`) with a robust evaluation to compare with."], False
    found: dict[tuple[str, str], dict[str, PairedComparison]] = {}
    for c in comparisons:
        found.setdefault((c.method, c.baseline), {})[c.metric] = c
    keys = list(dict.fromkeys(c.metric for c in comparisons))
    best = {key: at_best(records, key) for key in keys}
    eps_of = {robust_key(WORST, e): e for e in robust_eps(records)}
    warned = False
    for (method, baseline), by_metric in found.items():
        items = []
        for key in keys:
            if key not in by_metric:
                continue
            item = verdict_item(by_metric[key], records, examples, best[key])
            note = masking_note(records, (method, baseline), eps_of.get(key, -1.0))
            if note:
                item = item[:-1] + f"; {note})" if item.endswith(")") else f"{item} ({note})"
            items.append(item)
        warned = warned or any(
            warnings_for(by_metric[key], records, examples) for key in keys if key in by_metric
        )  # fmt: skip
        lines.append(f"- `{method}` vs `{baseline}`: " + "; ".join(items) + ".")
    failed = failed_checks(evaluated)
    if failed:
        lines += [
            "",
            f"{WARNING} Masking checks failed in {len({(r.method, r.seed) for r, _ in failed})} of {len(evaluated)} "
            f'runs ({_runs(failed)}): their robust accuracy may be overstated; see "{ROBUST_TITLE}".',
        ]
    return lines, warned


def robust_table(records: list[RunRecord], digits: int = 1) -> Table:
    """Accuracy (%) under each attack and the worst case, per method and ε, mean ± std over seeds.

    A worst-case cell is marked ⚠ when a masking check concerning that ε failed in a run of the method."""
    evaluated = robust_records(records)
    radii = robust_eps(records)
    headers = ["Method", "Attack", "Seeds", "ε 0 (clean)"] + [f"ε {format_eps(e)}" for e in radii]
    table = Table(headers, title="Accuracy under attack (%, mean ± std over seeds)")
    for method, group in by_method(evaluated).items():
        values = [_accuracies(r) for r in group]
        for attack in [*attacks_run(records), WORST]:
            row = [method, "worst case" if attack == WORST else attack, str(len(group)), _cell(values, "clean", 0.0)]
            for e in radii:
                cell = _cell(values, attack, e, digits)
                if attack == WORST and failed_checks(group, e):
                    cell += f" {WARNING}"
                row.append(cell)
            table.rows.append(row)
    return table


def _cell(values: list[dict[tuple[str, float], float]], attack: str, eps: float, digits: int = 1) -> str:
    found = [v[key] for v in values for key in v if key[0] == attack and np.isclose(key[1], eps, rtol=1e-9)]
    if not found:
        return "-"
    stat = Stat.of(100 * x for x in found)
    return stat.format(digits)


def check_lines(records: list[RunRecord]) -> list[str]:
    """One line per masking check: passed in every run, or failed, in which runs, with the numbers and the meaning."""
    evaluated = robust_records(records)
    names = list(dict.fromkeys(c["name"] for r in evaluated for c in r.robust.get("checks", [])))
    if not names:
        return ["No masking check could run (each needs its attacks: PGD at ε 1 runs with every evaluation)."]
    lines = []
    for name in names:
        ran = [(r, c) for r in evaluated for c in r.robust.get("checks", []) if c["name"] == name]
        failed = [(r, c) for r, c in ran if not c.get("passed", True)]
        if not failed:
            lines.append(f"- {name}: passed in {'all ' if len(ran) > 1 else ''}{len(ran)} run{'s' * (len(ran) > 1)}.")
            continue
        detail = "; ".join(f"`{r.method}` seed {r.seed}: {c.get('detail', '')}" for r, c in failed)
        meaning = next((text for start, text in CHECK_MEANINGS.items() if name.startswith(start)), "")
        lines.append(
            f"- {WARNING} {name}: **failed** in {len(failed)} of {len(ran)} runs ({detail})"
            + (f". {meaning[0].upper()}{meaning[1:]}." if meaning else ".")
        )
    return lines


def robust_section(
    records: list[RunRecord], comparisons: list[PairedComparison], figure: tuple[str, str] | None = None
) -> list[str]:
    """The "Robust accuracy" section's markdown lines (with its heading); ``figure``: (caption, relative link)."""
    if not robust_records(records):
        return []
    lines = [f"## {ROBUST_TITLE}", "", settings_text(records), "", render_markdown(robust_table(records)), ""]
    if any(WARNING in cell for row in robust_table(records).rows for cell in row):
        lines += [f"{WARNING}: a masking check concerning this ε failed in a run of the method (see below).", ""]
    if comparisons:
        title = "Paired differences of the worst-case robust accuracy (method − baseline, points)"
        lines += [render_markdown(paired_table(comparisons, title=title)), "", f"*{title}.*", ""]
    lines += ["Masking checks (are the attacks strong, or are the gradients misleading them?):", ""]
    lines += check_lines(records) + [""]
    missing = [r.label for r in records if not r.robust.get("results")]
    if missing:
        lines += [f"Runs without a robust evaluation: {', '.join(missing)} (`complement robust DIR` adds it).", ""]
    if figure is not None:
        caption, link = figure
        lines += [f"![{caption}]({link})", "", f"*{caption}.*", ""]
    return lines


def robust_figure(records: list[RunRecord], styles: dict[str, dict[str, str]] | None = None) -> Figure:
    """Worst-case accuracy against ε (ε 0: clean), one curve per method: the mean over seeds with a ±1 std
    band, each seed a hollow point."""
    evaluated = robust_records(records)
    if not evaluated:
        raise ValueError("no record has a robust evaluation to plot")
    groups = by_method(evaluated)
    styles = styles or method_styles(list(groups))
    radii = [0.0, *robust_eps(records)]
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for method, group in groups.items():
        style: dict[str, Any] = styles.get(method, {"color": "black", "ls": "-", "marker": "o"})
        per_seed = [[_accuracies(r).get(("clean" if e == 0 else WORST, e)) for e in radii] for r in group]
        columns = [[100 * v for v in column if v is not None] for column in zip(*per_seed)]
        shown = [i for i, column in enumerate(columns) if column]
        x = np.array([radii[i] for i in shown])
        mean = np.array([np.mean(columns[i]) for i in shown])
        std = np.array([np.std(columns[i], ddof=1) if len(columns[i]) > 1 else 0.0 for i in shown])
        ax.plot(x, mean, ms=6, mfc="none", lw=2, label=f"{method} ({len(group)} seed{'s' * (len(group) != 1)})",
                **style)  # fmt: skip
        ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.15, lw=0)
        for i in shown:
            ax.scatter([radii[i]] * len(columns[i]), columns[i], s=14, facecolors="none",
                       edgecolors=style["color"], alpha=0.6, lw=0.8)  # fmt: skip
    ax.set_xticks(radii, ["0\n(clean)"] + [format_eps(e) for e in radii[1:]])
    ax.set(xlabel="ε (L∞, in pixels of [0, 1] images)", ylabel="accuracy (%)", ylim=(-2, 102))
    ax.set_title(
        f"Worst-case accuracy over {', '.join(attacks_run(records))} against ε\n(mean ± std over seeds; points: seeds)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    failed = {(r.method, r.seed) for r, _ in failed_checks(evaluated)}
    if failed:
        fig.text(0.5, -0.04, f"Masking checks failed in {len(failed)} of {len(evaluated)} runs: their robust accuracy "
                 "may be overstated (see the report)", ha="center", fontsize=8, color="tab:red")  # fmt: skip
    return fig


def plot_robust_accuracy(
    records: list[RunRecord], path: str | os.PathLike, styles: dict[str, dict[str, str]] | None = None
) -> Path:
    """Write :func:`robust_figure` to ``path``."""
    return _save(robust_figure(records, styles), path)
