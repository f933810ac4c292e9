"""report.md answers "does COT help?" at the top: the verdict, the forest plot, the facts of the
runs, and the warnings a small test set or a saturated task call for (through the CLI)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import TensorDataset

import complement
from complement.experiments.cli import main
from complement.experiments.report import RunRecord, load_records, save_records, statistics, write_report
from complement.experiments.report.statistics import Metric, paired_comparison, paired_comparisons
from complement.experiments.report.tables import paired_table
from complement.experiments.report.verdict import verdict_lines
from tests.experiments.test_report import fake_run
from tests.helpers.blobs import blobs_task

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def blobs_variant(seed: int = 0, test_size: int = 64, separable: bool = False):
    """The ``blobs`` task with ``test_size`` test examples; ``separable``: each class a far corner (100% reachable)."""
    task = blobs_task(seed)
    g = torch.Generator().manual_seed(10_000 + seed)
    centers = torch.randn(4, 8, generator=torch.Generator().manual_seed(seed)) * 2

    def split(n: int) -> TensorDataset:
        y = torch.randint(0, 4, (n,), generator=g)
        if separable:
            x = torch.zeros(n, 8)
            x[torch.arange(n), y] = 8.0
            return TensorDataset(x + 0.1 * torch.randn(n, 8, generator=g), y)
        return TensorDataset(centers[y] + torch.randn(n, 8, generator=g), y)

    task.train, task.val, task.test = split(160), split(64), split(test_size)
    return task


def use_variant(monkeypatch) -> None:
    from complement.experiments.runs import launch

    def build(task, options, seed):
        if task != "blobs":
            raise ValueError(f"unknown task {task!r}")
        return blobs_variant(seed, **options)

    monkeypatch.setattr(launch, "build_task", build)


def compare(out: Path, *args: str) -> Path:
    main(["compare", "--task", "blobs", *args, "--out", str(out), "--progress", "false"])
    (directory,) = out.iterdir()
    return directory


@pytest.fixture(scope="module")
def default_compare(tmp_path_factory) -> Path:
    """``complement compare`` with the default methods (ce, cot, ce_2x), 2 seeds, a 60-example test set."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_variant(monkeypatch)
        return compare(tmp_path_factory.mktemp("compare"), "--seeds", "2", "--task_options", "{test_size: 60}")


def verdict_of(report: str) -> str:
    return report[report.index("## Verdict") : report.index("## The runs")]


def line_of(report: str, method: str, baseline: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"- `{method}` vs `{baseline}`: "))


def test_the_report_opens_with_the_verdict_and_the_forest_plot(default_compare):
    report = (default_compare / "report.md").read_text()
    headings = re.findall(r"^## .*$", report, flags=re.M)
    assert headings[:3] == ["## Verdict: does COT help?", "## The runs", "## Test metrics (mean ± std over seeds)"]
    verdict = verdict_of(report)
    for method, baseline in (("cot", "ce"), ("cot", "ce_2x"), ("ce_2x", "ce")):
        line = line_of(verdict, method, baseline)
        positions = [line.index(f"{name} ") for name in ("accuracy", "NLL", "ECE")]  # one each, in this order
        assert positions == sorted(positions) and "seeds" in line
        assert re.search(r"accuracy [+-]\d+\.\d\d pts \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \(", line), line
    assert "Reading: " in verdict
    # the forest plot right after the verdict, before anything else
    assert "](figures/forest.png)" in verdict
    forest = default_compare / "figures" / "forest.png"
    data = forest.read_bytes()
    assert data[:8] == PNG_MAGIC and data[-8:-4] == b"IEND" and len(data) > 5000


def test_a_60_example_test_set_is_flagged_next_to_the_accuracy(default_compare):
    report = (default_compare / "report.md").read_text()
    assert "Test set: 60 examples per run; one example is 1.67 pts of accuracy." in report
    for method, baseline in (("cot", "ce"), ("cot", "ce_2x"), ("ce_2x", "ce")):
        line = line_of(report, method, baseline)
        accuracy = line[: line.index("; NLL ")]  # the warning stands with the accuracy, not the NLL or ECE
        assert "⚠ small test set: this difference is " in accuracy and " of 60 examples (one is 1.67 pts)" in accuracy
        assert re.search(r"moves an accuracy of \d+\.\d% by ±\d+\.\d pts", accuracy)
        assert "⚠" not in line[line.index("; NLL ") :]
    assert "1.96·√(p(1−p)/N)" in report  # the rule, stated once


def test_the_facts_of_the_run(default_compare):
    report = (default_compare / "report.md").read_text()
    facts = report[report.index("## The runs") : report.index("## Test metrics")]
    assert "complement compare --task blobs --seeds 2 --task_options '{test_size: 60}'" in facts
    assert "- Data: train 160, validation 64, test 60 examples." in facts
    assert "- Classes (4, training-set counts not recorded): a, b, c, d." in facts
    rows = ["| optimizer | adam |", "| learning rate | 0.01 |", "| batch size | 32 |", "| epochs (max_epochs) | 2 |"]
    rows += ["| learning-rate schedule | none |", "| weight decay | 0 |"]
    assert all(row in facts for row in rows), facts
    epochs = next(line for line in facts.splitlines() if line.startswith("| epochs run |"))
    assert "`ce` 2" in epochs and "`cot` 2" in epochs
    assert "`ce_2x` 4 (2 × max_epochs: the method multiplies the epochs" in epochs
    versions = f"complement {complement.__version__}, torch {torch.__version__}, Lightning {pl.__version__}"
    assert f"- Versions: {versions}, Python " in facts
    assert f", {os.cpu_count()} CPUs, torch threads per run " in facts and "device cpu" in facts
    assert "not recorded for" not in facts  # every run recorded its facts


def test_a_saturated_task_says_there_is_nothing_to_separate(tmp_path, monkeypatch):
    use_variant(monkeypatch)
    directory = compare(tmp_path, "--methods", "[ce, cot]", "--seeds", "2", "--task_options", "{separable: true}",
                        "--train.max_epochs", "2", "--train.lr", "0.05")  # fmt: skip
    records = load_records(directory)
    assert all(r.test["test_acc"] == 1.0 for r in records), "the separable task must saturate"
    report = (directory / "report.md").read_text()
    verdict = verdict_of(report)
    assert "⚠ All methods at 100% accuracy on the test set, on every seed: nothing to separate on accuracy." in verdict
    assert line_of(verdict, "cot", "ce").startswith("- `cot` vs `ce`: accuracy: both at 100% on every seed, nothing")
    assert "Reading: `cot` and `ce` are both at 100% accuracy on every seed: nothing to separate." in verdict
    assert "small test set" not in verdict  # nothing to resolve at 100%
    row = next(line for line in report.splitlines() if line.startswith("| cot | ce |"))
    assert "| no difference |" in row and "seeds)" not in row.split("| no difference |")[0]


def runs_of(values: dict[str, list[float]]) -> list[RunRecord]:
    history = [{"epoch": 1, "passes": 1, "val_acc": 0.5}]
    return [RunRecord(m, s, history, {"test_acc": v}) for m, vs in values.items() for s, v in enumerate(vs)]


@pytest.mark.parametrize(
    "cot",
    [
        [0.9, 0.8, 0.85],  # equal to ce on every seed
        [0.9 + 1e-12, 0.8 - 3e-13, 0.85],  # float rounding of equal
        [0.91, 0.79, 0.85],  # +1 point, -1 point, 0: no difference on average
    ],
)
def test_a_zero_difference_has_one_wording(tmp_path, cot):
    runs = runs_of({"ce": [0.9, 0.8, 0.85], "cot": cot})
    (c,) = paired_comparisons(runs)
    assert (c.verdict, c.mean, c.seeds_needed) == ("no difference", 0.0, None)
    assert c.short_verdict() == "no difference" and c.phrase() == "no difference, 3 seeds"
    assert c.sentence().endswith(": no difference.")
    assert paired_table([c]).rows[0][5] == "no difference"
    line = line_of("\n".join(verdict_lines(runs, [c])), "cot", "ce")
    assert "(no difference, 3 seeds" in line and "+0.00 pts" in line
    single = paired_comparison("cot", "ce", "test_acc", {0: 0.9}, {0: 0.9})
    assert single.verdict == "no difference" and single.short_verdict() == "no difference"
    for text in (c.sentence(), line, single.sentence(), " ".join(paired_table([c]).rows[0])):
        assert "10000" not in text and "10,000" not in text and "no diff." not in text and "not separable" not in text


def test_a_tiny_but_real_difference_still_needs_seeds():
    # +1, -1, +1, -0.99 points: a mean of +0.0025 points, far inside the seeds' spread
    (c,) = paired_comparisons(runs_of({"ce": [0.9, 0.8, 0.85, 0.7], "cot": [0.91, 0.79, 0.86, 0.6901]}))
    assert c.verdict == "not separable" and c.short_verdict() == "n.s. (over 10,000 seeds)"
    assert "would need over 10,000 seeds" in c.sentence() and c.phrase().endswith("over 10,000 seeds needed")


def test_old_records_without_facts_still_report(tmp_path):
    records = [fake_run(tmp_path, method, seed) for method in ("ce", "cot", "ce_2x") for seed in (0, 1, 2)]
    save_records(records, tmp_path / "old")
    file = tmp_path / "old" / "records.json"
    data = json.loads(file.read_text())
    for item in data["records"]:
        del item["facts"]  # as records.json was before runs recorded their facts
    file.write_text(json.dumps(data))
    old = load_records(file)
    assert all(r.facts == {} for r in old)
    report = write_report(old, tmp_path / "compare", "synthetic", "cmd").report.read_text()
    facts = report[report.index("## The runs") : report.index("## Test metrics")]
    assert "- Data: not recorded; test predictions scored per run (rows the metrics count, e.g. tokens): 80." in facts
    assert "- Classes: 5 classes; names and counts not recorded." in facts
    assert "- Versions: not recorded." in facts and "- Machine: not recorded." in facts
    assert "| optimizer, learning rate, schedule, batch size, ... | not recorded |" in facts
    assert "| epochs run | `ce` 4, `ce_2x` 4, `cot` 4 |" in facts
    assert "- Facts not recorded for any run (runs from before complement recorded them)." in facts
    assert "Test set: 80 examples per run" in report  # from the predictions themselves
    assert line_of(report, "cot", "ce")


def test_the_headline_metrics_are_data(monkeypatch):
    """A robust accuracy joins the verdict, with the accuracy's warnings, as one Metric entry."""
    robust = Metric("test_robust_acc_pgd", "PGD robust accuracy", "robust accuracy", True, points=True,
                    per_example=True, best=1.0, headline=True)  # fmt: skip
    monkeypatch.setitem(statistics.METRICS, robust.key, robust)
    runs = runs_of({"ce": [0.9, 0.8, 0.85], "cot": [0.92, 0.83, 0.86]})
    for run in runs:
        run.test[robust.key] = run.test["test_acc"] - 0.3
    metrics = (*statistics.HEADLINE_METRICS, robust.key)
    comparisons = paired_comparisons(runs, metrics=metrics)
    line = line_of("\n".join(verdict_lines(runs, comparisons, test_size=200, metrics=metrics)), "cot", "ce")
    assert "; robust accuracy +2.00 pts [" in line
    assert line.count("⚠ small test set") == 2  # accuracy and robust accuracy: both shares of 200 examples


def test_the_facts_name_what_differs_between_methods_and_runs():
    from complement.experiments.report.facts import facts_lines

    def facts(lr: float, torch_threads: int) -> dict:
        return {
            "sizes": {"train": 100, "val": 20, "test": 30},
            "class_names": [f"class{i}" for i in range(25)],
            "train_class_counts": [4] * 25,
            "train": {"optimizer": "sgd", "lr": lr, "max_epochs": 3, "lr_milestones": [1, 2]},
            "versions": {"torch": "2.0", "lightning": "2.1", "complement": "0.1.0", "python": "3.11"},
            "machine": {"platform": "Linux", "processor": "x86_64", "cpus": 8, "torch_threads": torch_threads,
                        "accelerator": "CPUAccelerator", "device": "cpu"},
        }  # fmt: skip

    history = [{"epoch": e, "passes": e, "val_acc": 0.5} for e in (1, 2, 3)]
    runs = [RunRecord("ce", 0, history, {}, facts=facts(0.1, 1)), RunRecord("cot", 0, history, {}, facts=facts(0.2, 2))]
    runs.append(RunRecord("ce_2x", 0, history + [{"epoch": e, "passes": e, "val_acc": 0.5} for e in (4, 5, 6)], {},
                          facts=facts(0.1, 1)))  # fmt: skip
    text = "\n".join(facts_lines(runs))
    assert "| learning rate | `ce`: 0.1; `ce_2x`: 0.1; `cot`: 0.2 |" in text
    assert (
        "| optimizer | sgd |" in text and "| schedule milestones (epochs, or fractions of the run) | [1, 2] |" in text
    )
    assert "| epochs run | `ce` 3, `ce_2x` 6 (2 × max_epochs: the method multiplies the epochs" in text
    assert "- Classes (25, with their training-set counts): class0 (4), class1 (4)," in text
    assert "class19 (4), … and 5 more." in text
    assert "torch threads per run 1 / 2 (differs between runs)" in text
    assert "- Versions: complement 0.1.0, torch 2.0, Lightning 2.1, Python 3.11." in text
