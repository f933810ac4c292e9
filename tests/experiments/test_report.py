"""complement.experiments.report: end to end on synthetic runs, exact convergence numbers, and bad input."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

import numpy as np
import pytest
import torch

from complement.experiments.report import RunRecord, load_records, save_records, write_report
from complement.experiments.report.markdown import equal_compute_note
from complement.experiments.report.statistics import paired_comparisons
from complement.experiments.report.tables import (
    NOT_REACHED,
    Stat,
    convergence,
    convergence_table,
    convergence_target,
    final_passes,
    final_steps,
    paired_table,
    render_console,
    render_markdown,
    results_table,
    summarize_test,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
C = 5


def fake_run(
    tmp_path, method: str, seed: int, num_classes: int = C, sharpness: float = 2.0, epochs: int = 4
) -> RunRecord:
    g = torch.Generator().manual_seed(100 * seed + len(method))
    target = torch.randint(0, num_classes, (80,), generator=g)
    logits = torch.randn(80, num_classes, generator=g)
    logits[torch.arange(80), target] += sharpness
    run_dir = tmp_path / "runs" / f"{method}-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "predictions.pt"
    torch.save({"probs": logits.softmax(1), "target": target}, path)
    per_batch = 2 if method == "cot" else 1
    history = [
        {"epoch": e, "passes": 10 * per_batch * e, "train_loss": 1.0 / e, "val_acc": 0.5 + 0.1 * e, "val_nll": 1.0 / e}
        for e in range(1, epochs + 1)
    ]
    acc = 0.8 + 0.05 * (method == "cot") + 0.01 * seed
    test = {
        "test_acc": acc,
        "test_precision": acc - 0.01,
        "test_nll": 0.5,
        "test_ece": 0.05,
        "test_complement_entropy": 0.9,
    }
    return RunRecord(method, seed, history, test, str(path), str(run_dir), task="synthetic", num_classes=num_classes)


@pytest.fixture
def records(tmp_path):
    return [fake_run(tmp_path, method, seed) for method in ("ce", "cot") for seed in (0, 1)]


def test_write_report_end_to_end(tmp_path, records):
    out = tmp_path / "compare"
    paths = write_report(
        records, out, "synthetic", "complement compare --methods ce cot --seeds 0 1", date=datetime(2024, 5, 1, 12, 0)
    )
    text = paths.report.read_text()
    assert paths.report == out / "report.md"
    assert text.startswith("# COT comparison: synthetic")
    assert "2024-05-01" in text and "complement compare --methods ce cot --seeds 0 1" in text
    # table rows: method, seeds, test_acc mean ± std over seeds 0 and 1
    assert "| ce | 2 | 0.8050 ± 0.0071 |" in text
    assert "| cot | 2 | 0.8550 ± 0.0071 |" in text
    assert "## Equal-compute baseline" in text and "No `ce_2x` runs" in text
    assert set(paths.figures) == {"forest", "non_target_probabilities", "reliability", "learning_curves"}
    for png in paths.figures.values():
        assert f"]({png.relative_to(out).as_posix()})" in text  # embedded with a relative link
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1024
    assert "cot" in paths.console_table and "±" in paths.console_table
    # records.json round trip, with paths back as absolute paths
    loaded = load_records(out)
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in records]


def test_records_json_survives_moving_the_tree(tmp_path, records):
    save_records(records, tmp_path / "compare")
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    loaded = load_records(moved / "compare" / "records.json")
    assert loaded[0].predictions_path == str(moved / "runs" / "ce-0" / "predictions.pt")
    assert json.loads((moved / "compare" / "records.json").read_text())["records"][0]["predictions_path"] == (
        "../runs/ce-0/predictions.pt"
    )


def history(values, per_batch=1, batches=100):
    return [{"epoch": e, "passes": per_batch * batches * e, "val_acc": v} for e, v in enumerate(values, 1)]


def test_convergence_numbers_are_exact():
    runs = [
        RunRecord("ce", 0, history([0.50, 0.80, 0.90, 0.90])),
        RunRecord("ce", 1, history([0.60, 0.85, 0.95, 0.90])),
        RunRecord("cot", 0, history([0.70, 0.92, 0.93, 0.94], per_batch=2)),
        RunRecord("cot", 1, history([0.93, 0.95, 0.96, 0.96], per_batch=2)),
        RunRecord("gce", 0, history([0.50, 0.50, 0.50, 0.50])),
    ]
    target, used = convergence_target(runs)
    # the CE mean curve is 0.55, 0.825, 0.925, 0.90: its best is 0.925
    assert used == "ce" and target == pytest.approx(0.99 * 0.925, abs=1e-12)
    result = convergence(runs, target)
    ce, cot, gce = result["ce"], result["cot"], result["gce"]
    assert ce.per_seed == {0: None, 1: (3, 300.0)}  # seed 0 peaks at 0.90 < 0.91575
    assert (ce.reached, ce.seeds, ce.epoch, ce.passes) == (1, 2, Stat(3.0, None, 1), Stat(300.0, None, 1))
    assert cot.per_seed == {0: (2, 400.0), 1: (1, 200.0)}
    assert cot.epoch == Stat(1.5, pytest.approx(math.sqrt(0.5)), 2)
    assert cot.passes == Stat(300.0, pytest.approx(math.sqrt(2) * 100), 2)
    assert gce.reached == 0 and gce.epoch is None and gce.passes is None
    table = convergence_table(runs, target)
    rows = {row[0]: row for row in table.rows}
    assert rows["ce"] == ["ce", "1/2", "3.0 (1/2 seeds)", "300 (1/2 seeds)"]
    assert rows["cot"] == ["cot", "2/2", "1.5 ± 0.7", "300 ± 141"]
    assert rows["gce"] == ["gce", "0/1", NOT_REACHED, NOT_REACHED]
    # a target given by hand, and a baseline that is not there (falls back to the first method)
    assert convergence_target(runs, fraction=1.0)[0] == pytest.approx(0.925)
    assert convergence_target([r for r in runs if r.method != "ce"], baseline="ce")[1] == "cot"


def test_summary_is_mean_and_sample_std_over_seeds(records):
    stats = summarize_test(records)
    values = [r.test["test_acc"] for r in records if r.method == "cot"]
    assert stats["cot"]["test_acc"].mean == pytest.approx(np.mean(values))
    assert stats["cot"]["test_acc"].std == pytest.approx(np.std(values, ddof=1))
    assert Stat.of([0.5]).format() == "0.5000"  # one seed: no std


def test_renderers(records):
    table = results_table(records)
    markdown = render_markdown(table).splitlines()
    assert markdown[0].startswith("| Method | Seeds | Accuracy |") and set(markdown[1]) <= set("|-: ")
    console = render_console(table).splitlines()
    assert console[0] == table.title
    header, rule, *rows = console[1:]
    assert len(header) == len(rule) and not any("|" in line for line in console)
    # numbers right-aligned: each row ends exactly where the rule does
    assert all(len(row) == len(rule) for row in rows)


def test_equal_compute_note_follows_the_paired_numbers():
    def run(method, seed, acc, passes):
        return RunRecord(method, seed, [{"epoch": 1, "passes": passes, "val_acc": acc}], {"test_acc": acc})

    ce, ce_2x = [0.80, 0.81, 0.79, 0.82], [0.85, 0.86, 0.84, 0.87]
    runs = [run("ce", s, a, 100) for s, a in enumerate(ce)] + [run("ce_2x", s, a, 200) for s, a in enumerate(ce_2x)]
    cot = [0.855, 0.857, 0.848, 0.872]  # above ce by ~5 points on every seed; around ce_2x, noisy
    runs += [run("cot", s, a, 200) for s, a in enumerate(cot)]
    comparisons = paired_comparisons(runs)
    note = equal_compute_note(final_passes(runs), comparisons)
    assert "`cot` − `ce`, test accuracy: +5.30 pts (95% CI [" in note and "4 paired seeds): **better**." in note
    assert "`cot` − `ce_2x`, test accuracy: +0.30 pts" in note and "not separable with 4 seeds" in note
    assert "is more accurate than `ce` but not than `ce_2x`" in note
    table = paired_table(comparisons)
    assert table.rows[0][:3] == ["cot", "ce", "4"] and table.rows[0][5] == "better"
    assert "Optimizer steps" not in note  # records from before the steps were counted
    for record in runs:
        record.facts = {"optimizer_steps": {"ce": 50, "ce_2x": 100, "cot": 100}[record.method]}
    note = equal_compute_note(final_passes(runs), comparisons, final_steps(runs))
    assert (
        "Optimizer steps per run (mean): `ce` 50, `ce_2x` 100, `cot` 100." in note and "Note: `ce_2x` took" not in note
    )
    runs[-1].facts = {"optimizer_steps": 160}  # accumulation or a short epoch: steps that differ are said
    note = equal_compute_note(final_passes(runs), comparisons, final_steps(runs))
    assert "Note: `ce_2x` took 100 optimizer steps and `cot` 115: they differ in optimizer steps" in note


def test_empty_records_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no run records"):
        write_report([], tmp_path, "synthetic", "cmd")


def test_different_class_counts_are_refused(tmp_path):
    runs = [fake_run(tmp_path, "ce", 0), fake_run(tmp_path, "cot", 0, num_classes=C + 1)]
    with pytest.raises(ValueError, match="different class counts"):
        write_report(runs, tmp_path / "compare", "synthetic", "cmd")
    runs[1].num_classes = None  # undeclared: found from the predictions themselves
    with pytest.raises(ValueError, match="different class counts"):
        write_report(runs, tmp_path / "compare", "synthetic", "cmd")


def test_missing_predictions_file_is_refused(tmp_path, records):
    records[1].predictions_path = str(tmp_path / "nowhere" / "predictions.pt")
    with pytest.raises(FileNotFoundError, match=re.escape("ce (seed 1)")):
        write_report(records, tmp_path / "compare", "synthetic", "cmd")


def test_other_bad_input_is_refused(tmp_path, records):
    with pytest.raises(ValueError, match="different tasks"):
        write_report(records[:1] + [RunRecord(**{**records[1].to_dict(), "task": "other"})], tmp_path, "synthetic", "c")
    with pytest.raises(ValueError, match="appear once"):
        write_report(records + records[:1], tmp_path, "synthetic", "cmd")
    with pytest.raises(ValueError, match="lacks"):
        write_report([RunRecord("ce", 0, [{"epoch": 1}])], tmp_path, "synthetic", "cmd")
    torch.save({"probs": torch.randn(80, C), "target": torch.zeros(80, dtype=torch.long)}, records[0].predictions_path)
    with pytest.raises(ValueError, match="save softmax, not logits"):
        write_report(records, tmp_path, "synthetic", "cmd")


def test_runs_without_predictions_still_report(tmp_path, records):
    for record in records:
        record.predictions_path = None
    paths = write_report(records, tmp_path / "compare", "synthetic", "cmd")
    assert set(paths.figures) == {"forest", "learning_curves"}  # the forest plot needs only the test metrics
    assert "Runs without test predictions" in paths.report.read_text()


def test_probability_summaries_in_chunks_and_merged_equal_the_pooled_computation(monkeypatch):
    from torchmetrics.functional.classification import multiclass_calibration_error

    from complement.experiments.report import figures

    g = torch.Generator().manual_seed(3)
    runs = []
    for _ in range(3):
        target = torch.randint(0, 7, (50,), generator=g)
        runs.append(((torch.randn(50, 7, generator=g) * 3).softmax(1), target))
    monkeypatch.setattr(figures, "SUMMARY_CHUNK_ELEMENTS", 7 * 8)  # chunks of 8 rows
    merged = figures.summarize(*runs[0]).merge(figures.summarize(*runs[1])).merge(figures.summarize(*runs[2]))
    probs, target = torch.cat([p for p, _ in runs]), torch.cat([t for _, t in runs])
    wrong = figures.non_target(probs.double(), target)
    expected_hist = torch.histogram(wrong.flatten().clamp(figures.PROB_FLOOR, 1.0), bins=figures.HISTOGRAM_EDGES).hist
    torch.testing.assert_close(merged.histogram, expected_hist)
    torch.testing.assert_close(merged.rank_sums / merged.rows, wrong.sort(dim=1, descending=True).values.mean(0))
    assert merged.rows == 150 and merged.histogram.sum() == 150 * 6
    ece = figures.expected_calibration_error_from_bins(*figures.reliability_bins(merged))
    assert ece == pytest.approx(float(multiclass_calibration_error(probs, target, 7, n_bins=15, norm="l1")), abs=1e-6)
    with pytest.raises(ValueError, match="cannot pool predictions over 7 and 4 classes"):
        merged.merge(figures.summarize(torch.full((2, 4), 0.25), torch.zeros(2, dtype=torch.long)))
