"""What the runs were, for ``report.md``: data sizes, classes, resolved settings, versions, machine.

Read from each record's ``facts`` (see :mod:`.records`): ``sizes``, ``class_names``,
``train_class_counts``, ``train`` (the resolved hyper-parameters, before the method's
own changes), ``versions`` and ``machine``. The epochs each method ran come from its
history: a method that multiplies the epochs (``ce_2x``: twice ``max_epochs``, and its
learning-rate schedule stretched with them) is named with its factor.

Records of runs from before facts were recorded have none: each item is then "not
recorded", and the report still stands. A value that differs between runs is given
with the methods it belongs to (settings) or as the values found (the rest).
"""

from __future__ import annotations

from typing import Any

from .records import RunRecord
from .tables import by_method

NOT_RECORDED = "not recorded"
MAX_CLASSES_SHOWN = 20
# The resolved settings in the order shown, with their names; others follow, sorted.
SETTINGS = {
    "optimizer": "optimizer",
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "lr_schedule": "learning-rate schedule",
    "lr_milestones": "schedule milestones (epochs, or fractions of the run)",
    "lr_gamma": "schedule factor (gamma)",
    "max_epochs": "epochs (max_epochs)",
    "batch_size": "batch size",
    "accumulate_grad_batches": "gradient accumulation (batches)",
    "complement_weight": "complement weight",
    "cot_optimizers": "COT optimizers",
    "lr_warmup": "learning-rate warm-up",
    "precision": "precision",
    "accelerator": "accelerator",
    "devices": "devices",
    "checkpoint_every_n_steps": "checkpoint every n steps",
    "keep_best": "keep best checkpoint by",
}


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _distinct(values: list[Any]) -> str:
    """The values found, in order; several are flagged as differing between runs."""
    found = list(dict.fromkeys(_text(v) for v in values))
    if not found:
        return NOT_RECORDED
    return found[0] if len(found) == 1 else " / ".join(found) + " (differs between runs)"


def _with_facts(records: list[RunRecord], key: str) -> list[RunRecord]:
    return [r for r in records if isinstance(r.facts, dict) and r.facts.get(key) is not None]


def data_line(records: list[RunRecord], scored: dict[str, int] | None = None) -> str:
    recorded = _with_facts(records, "sizes")
    if recorded:
        names = (("train", "train"), ("val", "validation"), ("test", "test"))
        parts = [f"{name} {_distinct([r.facts['sizes'].get(key) for r in recorded])}" for key, name in names]
        text = ", ".join(parts) + " examples"
    else:
        text = NOT_RECORDED
    rows = sorted(set((scored or {}).values()))
    tests = {r.facts["sizes"].get("test") for r in recorded}
    if rows and (not recorded or set(rows) != tests):
        text += f"; test predictions scored per run (rows the metrics count, e.g. tokens): {_distinct(rows)}"
    return f"- Data: {text}."


def classes_line(records: list[RunRecord]) -> str:
    recorded = _with_facts(records, "class_names")
    if not recorded:
        declared = {r.num_classes for r in records if r.num_classes is not None}
        number = f"{_distinct(sorted(declared))} classes; " if declared else ""
        return f"- Classes: {number}names and counts {NOT_RECORDED}."
    names = [str(name) for name in recorded[0].facts["class_names"]]
    if any([str(n) for n in r.facts["class_names"]] != names for r in recorded):
        return f"- Classes: {len(names)}; the class names differ between runs."
    counted = [list(r.facts["train_class_counts"]) for r in _with_facts(recorded, "train_class_counts")]
    counts: list[int] | None = counted[0] if counted and len(counted[0]) == len(names) else None
    shown = [f"{name} ({counts[i]:,})" if counts else name for i, name in enumerate(names[:MAX_CLASSES_SHOWN])]
    more = len(names) - MAX_CLASSES_SHOWN
    listing = ", ".join(shown) + (f", … and {more:,} more" if more > 0 else "")
    counted_text = "with their training-set counts" if counts else f"training-set counts {NOT_RECORDED}"
    if counts and any(other != counts for other in counted):
        counted_text += " (of the first run; they differ between runs)"
    return f"- Classes ({len(names):,}, {counted_text}): {listing}."


def settings_table(records: list[RunRecord]) -> list[str]:
    """The resolved training settings, one row each; settings that differ between methods name them,
    and the epochs each method ran (from its history) show a method's factor on ``max_epochs``."""
    groups = by_method(records)
    recorded = {m: [r.facts["train"] for r in _with_facts(group, "train")] for m, group in groups.items()}
    recorded = {m: settings for m, settings in recorded.items() if settings}
    epochs_run = {m: max(int(r.history[-1]["epoch"]) for r in group) for m, group in groups.items()}
    lines = ["| Setting | Value |", "| --- | --- |"]
    if recorded:
        keys = [k for k in SETTINGS if any(k in s for ss in recorded.values() for s in ss)]
        keys += sorted({k for ss in recorded.values() for s in ss for k in s} - set(SETTINGS))
        for key in keys:
            per_method = {m: _distinct([s.get(key) for s in ss]) for m, ss in recorded.items()}
            values = list(dict.fromkeys(per_method.values()))
            cell = values[0] if len(values) == 1 else "; ".join(f"`{m}`: {v}" for m, v in per_method.items())
            lines.append(f"| {SETTINGS.get(key, key)} | {cell} |")
    else:
        lines.append(f"| optimizer, learning rate, schedule, batch size, ... | {NOT_RECORDED} |")
    lines.append(f"| epochs run | {_epochs_cell(epochs_run, recorded)} |")
    return lines


def _epochs_cell(epochs_run: dict[str, int], recorded: dict[str, list[dict]]) -> str:
    parts = []
    for method, epochs in epochs_run.items():
        planned = {s.get("max_epochs") for s in recorded.get(method, [])}
        text = f"`{method}` {epochs}"
        max_epochs = next(iter(planned)) if len(planned) == 1 else None
        if isinstance(max_epochs, int) and max_epochs > 0:
            if epochs != max_epochs and epochs % max_epochs == 0:
                text += f" ({epochs // max_epochs} × max_epochs: the method multiplies the epochs and its schedule)"
            elif epochs < max_epochs:
                text += f" (of max_epochs {max_epochs})"
        parts.append(text)
    return ", ".join(parts)


def versions_line(records: list[RunRecord]) -> str:
    recorded = [r.facts["versions"] for r in _with_facts(records, "versions")]
    if not recorded:
        return f"- Versions: {NOT_RECORDED}."
    names = (("complement", "complement"), ("torch", "torch"), ("lightning", "Lightning"), ("python", "Python"))
    parts = [f"{label} {_distinct([v.get(key) for v in recorded if v.get(key) is not None])}" for key, label in names]
    return f"- Versions: {', '.join(parts)}."


def machine_line(records: list[RunRecord]) -> str:
    recorded = [r.facts["machine"] for r in _with_facts(records, "machine")]
    if not recorded:
        return f"- Machine: {NOT_RECORDED}."

    def of(key: str) -> str:
        return _distinct([m.get(key) for m in recorded if m.get(key) is not None])

    parts = [
        f"{of('platform')} ({of('processor')})",
        f"{of('cpus')} CPUs",
        f"torch threads per run {of('torch_threads')}",
        f"accelerator {of('accelerator')}",
        f"device {of('device')}",
    ]
    return f"- Machine: {', '.join(parts)}."


def facts_lines(records: list[RunRecord], scored: dict[str, int] | None = None) -> list[str]:
    """The facts section's markdown lines (after the command)."""
    lines = [data_line(records, scored), classes_line(records), versions_line(records), machine_line(records)]
    missing = [r for r in records if not r.facts]
    if missing:
        which = "any run" if len(missing) == len(records) else f"{len(missing)} of {len(records)} runs"
        lines.append(f"- Facts {NOT_RECORDED} for {which} (runs from before complement recorded them).")
    lines += ["", "Training settings, as resolved for the runs (the method's own changes in the last row):", ""]
    return lines + settings_table(records)
