"""Robust accuracy in the report, from records alone: the metrics made from their keys, the verdict's block
against ce and ce_2x, and failed masking checks shown next to the numbers they concern."""

from __future__ import annotations

import math

import pytest

from complement.experiments.report import write_report
from complement.experiments.report.records import RunRecord, format_eps, parse_robust_key, robust_key
from complement.experiments.report.statistics import metric_info, paired_comparisons

pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # equal paired differences
EPS = (0.1, 0.3)
TOTAL = 200


def record(method: str, seed: int, worst: dict[float, float], check=None, fails: bool = False):
    """A run with a robust evaluation: ``worst`` accuracy per ε (pgd a little above it, fgsm above that), and
    the extra masking ``check`` ``(name, eps)``, failed if ``fails``."""
    results = [{"attack": "clean", "eps": 0.0, "correct": 190, "total": TOTAL}]
    for attack, extra in (("fgsm", 0.1), ("pgd", 0.02), ("worst", 0.0)):
        for eps, acc in worst.items():
            results.append({"attack": attack, "eps": eps, "correct": round((acc + extra) * TOTAL), "total": TOTAL})
    results.append({"attack": "pgd", "eps": 1.0, "correct": 0, "total": TOTAL})
    checks = [
        {"name": "accuracy falls at eps=1", "passed": True, "detail": "PGD at eps 1 (any image): 0.0%", "eps": None}
    ]
    checks += [{"name": f"PGD at least as strong as FGSM (eps {e:g})", "passed": True, "detail": "", "eps": e}
               for e in worst]  # fmt: skip
    if check is not None:
        name, eps = check
        checks = [c for c in checks if c["name"] != name]
        checks.append({"name": name, "passed": not fails, "detail": "pgd 50.0% vs pgd_dlr 40.0%", "eps": eps})
    robust = {
        "settings": {"attacks": ["fgsm", "pgd"], "eps": list(worst), "steps": 20, "examples": TOTAL},
        "examples": TOTAL,
        "results": results,
        "checks": checks,
        "wall_time_s": 1.0,
    }
    test = {"test_acc": 0.95}
    test |= {robust_key(r["attack"], r["eps"]): r["correct"] / TOTAL for r in results if r["eps"] in worst}
    history = [{"epoch": 1, "passes": 10, "val_acc": 0.9}]
    return RunRecord(method, seed, history, test, None, "", task="digits", num_classes=10, robust=robust)


def runs(failed=None, failing=("cot", 1)):
    found = []
    for seed in range(3):
        for method, base in (("ce", 0.40), ("ce_2x", 0.42), ("cot", 0.50)):
            worst = {0.1: base + 0.3 + 0.01 * seed, 0.3: base + 0.02 * seed}
            found.append(record(method, seed, worst, failed, (method, seed) == failing))
    return found


def test_robust_keys_make_their_metrics():
    key = robust_key("pgd_dlr", 8 / 255)
    assert parse_robust_key(key) == ("pgd_dlr", pytest.approx(8 / 255, rel=1e-5))
    assert parse_robust_key("test_acc") is None and parse_robust_key("test_robust_acc_pgd") is None
    assert format_eps(8 / 255) == "8/255" and format_eps(0.2) == "0.2" and format_eps(0.3) == "0.3"
    info = metric_info(robust_key("worst", 0.3))
    assert (info.label, info.points, info.per_example, info.best, info.headline) == (
        "robust acc. ε 0.3", True, True, 1.0, False)  # fmt: skip
    assert metric_info(robust_key("fgsm", 0.1)).name == "fgsm robust accuracy at ε 0.1"
    assert metric_info("test_other").label == "other"  # any other key: as before


def test_the_report_compares_worst_case_robust_accuracy_with_ce_and_ce_2x(tmp_path):
    records = runs()
    comparisons = paired_comparisons(records, metrics=(robust_key("worst", 0.3),))
    cot = {c.baseline: c for c in comparisons if c.method == "cot"}
    assert set(cot) == {"ce", "ce_2x"} and math.isclose(cot["ce"].mean, 0.10) and cot["ce"].verdict == "better"
    paths = write_report(records, tmp_path, "digits", "complement compare ...")
    report = paths.report.read_text()
    verdict = report.split("## The runs")[0]
    assert "- `cot` vs `ce`: robust acc. ε 0.1 +10.00 pts [+10.00, +10.00] (better, 3 seeds" in verdict
    assert "- `cot` vs `ce_2x`: robust acc. ε 0.1 +8.00 pts" in verdict
    assert "masking check failed" not in report and "⚠ Masking checks failed" not in report
    section = report.split("## Robust accuracy")[1].split("## Convergence")[0]
    assert "| cot | worst case | 3 | 95.0 ± 0.0 | 81.0 ± 1.0 | 52.0 ± 2.0 |" in section
    assert "- accuracy falls at eps=1: passed in all 9 runs." in section
    assert "Attacked: the first 200 test examples" in section
    assert (tmp_path / "figures" / "robust_accuracy.png").stat().st_size > 1000
    assert "robust_accuracy" in paths.figures and "Accuracy under attack" in paths.console_table


@pytest.mark.parametrize(("eps", "flagged"), [(0.3, (0.3,)), (None, (0.1, 0.3))])
def test_a_failed_masking_check_stands_next_to_the_numbers_it_concerns(tmp_path, eps, flagged):
    name = "cross-entropy finds what the margin loss finds (eps 0.3)" if eps else "accuracy falls at eps=1"
    report = write_report(runs(failed=(name, eps)), tmp_path, "digits", "c").report.read_text()
    verdict = report.split("## The runs")[0]
    line = next(x for x in verdict.splitlines() if x.startswith("- `cot` vs `ce`: robust"))
    items = dict(zip(EPS, line.split("; robust acc. ")))
    for e in EPS:
        assert ("⚠ masking check failed for `cot` (seed 1): " + name in items[e]) == (e in flagged), items[e]
    assert "⚠ Masking checks failed in 1 of 9 runs (`cot` (seed 1))" in verdict
    ce_line = next(x for x in verdict.splitlines() if x.startswith("- `ce_2x` vs `ce`: robust"))
    assert "masking" not in ce_line, "only the pairs with the failing run"
    section = report.split("## Robust accuracy")[1]
    row = next(x for x in section.splitlines() if x.startswith("| cot | worst case |")).split(" | ")
    assert [("⚠" in row[4 + i]) for i in range(2)] == [e in flagged for e in EPS]
    assert f"- ⚠ {name}: **failed** in 1 of 9 runs (`cot` seed 1: pgd 50.0% vs pgd_dlr 40.0%)." in section


def test_runs_without_a_robust_evaluation_are_named_and_the_report_stands(tmp_path):
    records = runs()
    records[0] = RunRecord.from_dict({k: v for k, v in records[0].to_dict().items() if k != "robust"})
    records[0].test = {"test_acc": 0.9}
    report = write_report(records, tmp_path, "digits", "c").report.read_text()
    assert "Runs without a robust evaluation: ce (seed 0) (`complement robust DIR` adds it)." in report
    assert "| ce | worst case | 2 |" in report
