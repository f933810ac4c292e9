"""scripts/results.py: which comparisons it runs, resumes or keeps, and the summary it writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from complement.experiments.report.records import RunRecord, save_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def results(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("results_script", ROOT / "scripts" / "results.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "results_script", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT", tmp_path / "out")
    monkeypatch.setattr(module, "DOC", tmp_path / "results.md")
    monkeypatch.setattr(module, "FIGURES", tmp_path / "figures")
    return module


def fake_comparison(folder: Path, cot_gain: float, finished: bool = True) -> None:
    """10 seeds of ce, ce_2x and cot whose accuracy differs from ce's by ``cot_gain`` plus small noise."""
    rng = np.random.default_rng(0)
    records = []
    for seed in range(10):
        base = 0.9 + 0.01 * rng.standard_normal()
        for method, gain, nll in (("ce", 0.0, 0.40), ("ce_2x", 0.0, 0.45), ("cot", cot_gain, 0.35)):
            accuracy = base + gain + 0.002 * rng.standard_normal()
            test = {"test_acc": accuracy, "test_nll": nll + 0.01 * rng.standard_normal(), "test_ece": 0.02}
            records.append(RunRecord(method=method, seed=seed, test=test))
    folder.mkdir(parents=True)
    save_records(records, folder)
    if finished:
        (folder / "report.md").write_text(
            "# COT comparison\n\nCommand:\n\n```bash\ncomplement compare --task mnist\n```\n\n"
            "## Test metrics (mean ± std over seeds)\n\ntable A\n\n## Paired differences over seeds\n\ntable B\n"
        )


def test_the_summary_reads_the_paired_verdicts(results):
    fake_comparison(results.OUT / "mnist" / "compare-mnist-20261125-100000", cot_gain=0.02)
    fake_comparison(results.OUT / "digits" / "compare-digits-20261125-100000", cot_gain=0.0)
    results.collect()
    doc = results.DOC.read_text()
    mnist = next(line for line in doc.splitlines() if line.startswith("| [MNIST-5k, MLP, Adam, one"))
    digits = next(line for line in doc.splitlines() if line.startswith("| [digits"))
    assert "| 10 |" in mnist and mnist.count("**better**") == 3  # acc vs ce and ce_2x, NLL vs ce_2x
    assert mnist.endswith("| accuracy higher vs CE, higher vs CE 2×; NLL better than CE 2× | - |")  # no compare.json
    assert digits.count("n.s.") == 2 and "| accuracy not separable vs CE, not separable vs CE 2×; NLL better" in digits
    assert "## mnist" in doc and "### Paired differences" in doc and "table B" in doc
    assert "Not run yet in this form:" in doc and "`fashion_mnist`" in doc


def test_finished_comparisons_are_kept_and_unfinished_ones_resumed(results, monkeypatch):
    calls = []
    monkeypatch.setattr(results, "complement", calls.append)
    fake_comparison(results.OUT / "mnist" / "compare-mnist-20261125-100000", 0.0)
    fake_comparison(results.OUT / "digits" / "compare-digits-20261125-100000", 0.0, finished=False)
    results.run_experiment("mnist", rerun=False)
    results.run_experiment("digits", rerun=False)
    results.run_experiment("tweets", rerun=False)
    results.run_experiment("mnist", rerun=True)
    assert calls[0][:2] == ["compare", "--resume"] and calls[0][2].endswith("compare-digits-20261125-100000")
    assert calls[1][:3] == ["compare", "--task", "tweets"] and "--seeds 3 --jobs 1" in " ".join(calls[1])
    assert calls[2][:3] == ["compare", "--task", "mnist"] and len(calls) == 3


def test_the_robustness_part_is_rebuilt_between_its_markers_and_the_rest_is_kept(results):
    page = "# Results\n\nintro\n\n<!-- robustness -->\nold robustness text\n<!-- /robustness -->\n\nafter\n"
    results.DOC.write_text(page)
    folder = results.OUT / "robust_digits" / "compare-digits-20261205-100000"
    fake_comparison(folder, 0.0)
    report = (
        folder / "report.md"
    ).read_text() + "\n## Robust accuracy\n\nrobust table\n\n![ε](figures/x.png)\n\n*ε.*\n"
    (folder / "report.md").write_text(report)
    (folder / "figures").mkdir()
    (folder / "figures" / "robust_accuracy.png").write_bytes(b"png")
    results.collect_robustness()
    doc = results.DOC.read_text()
    assert doc.startswith("# Results\n\nintro\n\n<!-- robustness -->\n") and doc.endswith(
        "<!-- /robustness -->\n\nafter\n"
    )
    assert "old robustness text" not in doc
    assert "### robust_digits" in doc and "#### Robust accuracy" in doc and "robust table" in doc
    assert "(figures/robust_digits_robust_accuracy.png)" in doc
    assert "figures/x.png" not in doc and "*ε.*" not in doc  # the report's own links point into its folder
    assert (results.FIGURES / "robust_digits_robust_accuracy.png").read_bytes() == b"png"
    assert "Not run yet: `robust_digits_separate`, `robust_mnist`, `robust_fashion_mnist`." in doc
    results.collect_robustness()  # again: the same page
    assert results.DOC.read_text() == doc
    results.DOC.write_text("# Results\n")
    with pytest.raises(SystemExit, match="no <!-- robustness --> ... <!-- /robustness --> block to rebuild"):
        results.collect_robustness()


def test_every_step_schedule_of_the_experiments_decays_within_its_run(results):
    # MNIST's SGD rows had milestones [8, 11] in 8 epochs: the learning rate never decayed
    from complement.experiments.tasks.options import train_defaults

    checked = 0
    for name, experiment in {name: e for part in results.PARTS.values() for name, e in part.items()}.items():
        args = list(experiment.args)
        if "--train.lr_milestones" not in args:
            continue
        milestones = json.loads(args[args.index("--train.lr_milestones") + 1])
        given = args[args.index("--train.max_epochs") + 1] if "--train.max_epochs" in args else None
        epochs = int(given) if given is not None else train_defaults(args[0])["max_epochs"]
        for factor in (1, 2):  # ce_2x trains twice the epochs
            total = epochs * factor
            at = [m * factor if isinstance(m, int) else round(m * total) for m in milestones]
            assert all(0 < m < total for m in at), (name, milestones, total)
        checked += 1
    assert checked >= 4 + 6  # the SGD rows of MNIST-5k and Fashion-MNIST, and the step regimes


def test_the_regimes_part_has_a_row_per_schedule_and_decay(results):
    page = "# Results\n\n<!-- regimes -->\n<!-- /regimes -->\n\n<!-- generated -->\nmain part\n"
    results.DOC.write_text(page)
    fake_comparison(results.OUT / "regime_mnist_step_wd1e-4" / "compare-mnist-20261206-100000", cot_gain=0.02)
    fake_comparison(results.OUT / "regime_mnist_none_wd0" / "compare-mnist-20261206-100000", cot_gain=0.0)
    results.collect_regimes()
    doc = results.DOC.read_text()
    assert doc.endswith("<!-- /regimes -->\n\n<!-- generated -->\nmain part\n")
    assert "### MNIST-5k, MLP" in doc and "--train.lr_milestones '[0.5, 0.75]'" in doc
    step = next(line for line in doc.splitlines() if line.startswith("| step | 1e-4 |"))
    none = next(line for line in doc.splitlines() if line.startswith("| none | 0 |"))
    assert step.count("**better**") == 3 and none.count("n.s.") == 2
    assert "Not run yet:" in doc and "`regime_fashion_mnist_45k_cosine_wd0`" in doc
    assert len(results.REGIME_EXPERIMENTS) == 3 * 3 * 2


def save_settings(folder: Path, lr: float, tuned_lr: dict[str, float] | None = None) -> None:
    """The comparison's compare.json as compare writes it: at one rate, or each method's tuned one."""
    from complement.experiments.runs.comparison import Comparison
    from complement.experiments.runs.config import TrainConfig
    from complement.experiments.runs.tuning import TuneSettings

    tune = tuning = None
    if tuned_lr is not None:
        tune = TuneSettings(lr=(1e-3, 3e-3))
        tuning = {method: {f"{rate:g}": [0.9]} for method, rate in tuned_lr.items()}
    methods = ["ce", "cot", "ce_2x"]
    train = TrainConfig(lr=lr).resolved({})
    Comparison(folder, "mnist", {}, methods, 10, train, "complement compare", None, tune, tuned_lr, tuning).save()


def test_the_main_table_names_the_tuned_rates_and_keeps_what_this_machine_did_not_run(results):
    # the earlier page: a 9-column row and a section for tweets (fine-tuned: hours to repeat)
    old_row = "| [tweets sentiment, MiniLM fine-tuned](#tweets) | 3 | 80.0 | 79.0 | 79.5 | a | b | c | reading |"
    page = (
        "# Results\n\nintro\n\n<!-- generated -->\n\n## Summary table (generated)\n\n"
        f"{old_row}\n\n## tweets\n\ntweets section\n\n### Test metrics\n\nold tweets table\n"
    )
    results.DOC.write_text(page)
    mnist = results.OUT / "mnist" / "compare-mnist-20261206-100000"
    fake_comparison(mnist, cot_gain=0.02)
    save_settings(mnist, 1e-3, tuned_lr={"ce": 3e-3, "cot": 1e-3, "ce_2x": 3e-3})
    digits = results.OUT / "digits" / "compare-digits-20261206-100000"
    fake_comparison(digits, cot_gain=0.0)
    save_settings(digits, 3e-3)
    results.collect()
    doc = results.DOC.read_text()
    lines = doc.splitlines()
    assert next(line for line in lines if "](#mnist)" in line).endswith("| tuned: ce 0.003, cot 0.001, ce_2x 0.003 |")
    assert next(line for line in lines if "](#digits)" in line).endswith("| fixed 0.003 |")
    assert f"{old_row} {results.EARLIER} |" in lines  # the missing experiment keeps its row, marked untuned
    assert "## tweets\n\ntweets section\n\n### Test metrics\n\nold tweets table\n" in doc
    assert "Kept from an earlier build of this page" in doc and "`tweets`" in doc
    assert "`fashion_mnist`" in doc.split("Not run yet in this form:")[1]
    results.collect()  # again: the kept row is not marked twice
    assert results.DOC.read_text() == doc
    # the MLP experiments tune; the fine-tuned ones keep their card's rate
    assert "--tune.lr [0.0003, 0.001, 0.003, 0.01] --tune.seeds 2" in " ".join(results.command_for("mnist"))
    assert "--tune.lr" not in results.command_for("tweets")
