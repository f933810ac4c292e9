"""Robust accuracy through the command line, on a tiny image task: ``compare`` and ``fit`` with ``--robust.*``,
``complement robust DIR`` on finished runs without retraining, and every bad input refused in one line with
nothing written."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from complement.experiments.cli import main
from complement.experiments.report.records import RunRecord, robust_key

ROBUST = ["--robust.attacks", "[fgsm, pgd]", "--robust.eps", "[0.1, 0.3]", "--robust.steps", "10"]
QUIET = ["--progress", "false"]
KEYS = [robust_key(attack, eps) for attack in ("fgsm", "pgd", "worst") for eps in (0.1, 0.3)]


def only(path: Path) -> Path:
    (found,) = path.iterdir()
    return found


def files_of(run: Path) -> dict[str, str]:
    """Every file of a run but its record, config and lock, by SHA-256: what training wrote."""
    skip = {"record.json", "config.json", ".lock"}
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def test_compare_with_robust_settings_reports_robust_accuracy_per_method_and_eps(pixels, tmp_path, capsys):
    out = tmp_path / "out"
    main(["compare", "--task", "pixels", "--methods", "[ce, cot]", "--seeds", "2", "--out", str(out), *QUIET, *ROBUST])
    compare_dir = only(out)
    saved = json.loads((compare_dir / "compare.json").read_text())["robust"]
    assert saved == {"attacks": ["fgsm", "pgd"], "eps": [0.1, 0.3], "steps": 10, "examples": None}
    for method in ("ce", "cot"):
        for seed in (0, 1):
            run = compare_dir / f"{method}-seed{seed}"
            assert json.loads((run / "config.json").read_text())["robust"] == saved
            record = json.loads((run / "record.json").read_text())
            assert set(KEYS) <= set(record["test"]) and all(0 <= record["test"][k] <= 1 for k in KEYS)
            for eps in (0.1, 0.3):  # the worst case is never above any attack
                worst = record["test"][robust_key("worst", eps)]
                assert worst <= min(record["test"][robust_key(a, eps)] for a in ("fgsm", "pgd"))
            robust = record["robust"]
            assert robust["examples"] == 48 and robust["settings"] == saved
            assert {(r["attack"], r["eps"]) for r in robust["results"]} >= {("clean", 0.0), ("pgd", 1.0)}
            names = [c["name"] for c in robust["checks"]]
            assert "accuracy falls at eps=1" in names and "PGD at least as strong as FGSM (eps 0.3)" in names
            assert {c["eps"] for c in robust["checks"]} == {None, 0.1, 0.3}
    records = json.loads((compare_dir / "records.json").read_text())["records"]
    assert all(robust_key("worst", 0.3) in r["test"] for r in records)

    report = (compare_dir / "report.md").read_text()
    verdict = report.split("## The runs")[0]
    assert "**Robust accuracy** (worst case over fgsm, pgd" in verdict
    assert "- `cot` vs `ce`: robust acc. ε 0.1" in verdict and "robust acc. ε 0.3" in verdict
    section = report.split("## Robust accuracy")[1].split("## Convergence")[0]
    assert "| cot | worst case | 2 |" in section and "Δ robust acc. ε 0.3 [95% CI]" in section
    assert "Masking checks" in section and "- accuracy falls at eps=1: " in section
    assert "PGD at least as strong as FGSM (eps 0.1): " in section
    png = compare_dir / "figures" / "robust_accuracy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert "](figures/robust_accuracy.png)" in section
    assert "Accuracy under attack" in capsys.readouterr().out
    assert "robust_acc" not in report.split("## Test metrics")[1].split("## Paired")[0], "a table of their own"


def test_robust_adds_an_evaluation_to_a_finished_compare_without_retraining(pixels, tmp_path, capsys):
    out = tmp_path / "out"
    main(["compare", "--task", "pixels", "--methods", "[ce, cot]", "--seeds", "1", "--out", str(out), *QUIET])
    compare_dir = only(out)
    assert "Robust accuracy" not in (compare_dir / "report.md").read_text()
    runs = [compare_dir / "ce-seed0", compare_dir / "cot-seed0"]
    before = {run: files_of(run) for run in runs}
    test_before = {run: json.loads((run / "record.json").read_text())["test"] for run in runs}

    main(["robust", str(compare_dir), *ROBUST])
    output = capsys.readouterr().out
    assert "2 run(s) evaluated" in output and f"report: {compare_dir / 'report.md'}" in output
    for run in runs:
        assert files_of(run) == before[run], "no checkpoint, history, log or prediction written: no training"
        record = json.loads((run / "record.json").read_text())
        assert set(KEYS) <= set(record["test"])
        assert {k: v for k, v in record["test"].items() if k in test_before[run]} == test_before[run]
        assert json.loads((run / "config.json").read_text())["robust"]["eps"] == [0.1, 0.3]
    assert json.loads((compare_dir / "compare.json").read_text())["robust"]["steps"] == 10
    report = (compare_dir / "report.md").read_text()
    assert "## Robust accuracy" in report and "](figures/robust_accuracy.png)" in report

    main(["robust", str(compare_dir)])  # the saved settings: nothing to do
    assert "0 run(s) evaluated, 2 already evaluated with these settings" in capsys.readouterr().out
    main(["robust", str(compare_dir), "--robust.eps", "[0.2]"])  # other settings replace the earlier ones
    record = json.loads((runs[0] / "record.json").read_text())
    assert robust_key("worst", 0.2) in record["test"] and robust_key("worst", 0.3) not in record["test"]
    assert record["robust"]["settings"]["attacks"] == ["fgsm", "pgd"], "unset options keep the saved ones"


def test_robust_on_a_fit_directory_equals_the_evaluation_at_the_end_of_training(pixels, tmp_path, capsys):
    main(["fit", "--task", "pixels", "--method", "cot", "--out", str(tmp_path / "a"), *QUIET, *ROBUST])
    trained_with = json.loads((only(tmp_path / "a") / "record.json").read_text())
    assert "run directory" in capsys.readouterr().out
    main(["fit", "--task", "pixels", "--method", "cot", "--out", str(tmp_path / "b"), *QUIET])
    run = only(tmp_path / "b")
    before = files_of(run)
    main(["robust", str(run), *ROBUST])
    assert robust_key("worst", 0.3) in capsys.readouterr().out
    evaluated = json.loads((run / "record.json").read_text())
    assert files_of(run) == before
    # the final checkpoint holds the model at the end of training: the same attacks give the same numbers
    assert evaluated["robust"]["results"] == trained_with["robust"]["results"]
    assert {k: evaluated["test"][k] for k in KEYS} == {k: trained_with["test"][k] for k in KEYS}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--robust.eps", "[-0.1]"], r"--robust.eps: eps must be in \[0, 1\]"),
        (["--robust.eps", "[1.5]"], r"--robust.eps: eps must be in \[0, 1\]"),
        (["--robust.eps", "[0]"], "0 is no attack"),
        (["--robust.eps", "[a lot]"], "--robust.eps: radii are numbers in"),
        (["--robust.steps", "0"], "--robust.steps must be an integer >= 1"),
        (["--robust.attacks", "[pgd, cw]"], r"--robust.attacks: unknown attack\(s\) \['cw'\]; choose from"),
        (["--robust.examples", "0"], "--robust.examples must be an integer >= 1"),
        (["--task", "words", "--robust.eps", "[0.1]"], "is a text task; its inputs are token ids, with no pixel"),
        (["--task", "embeddings", "--robust.eps", "[0.1]"], r"not images in \[0, 1\] once its normalization"),
        (["--task", "pixels_tuple", "--robust.eps", "[0.1]"], "must return a tensor of logits .* got tuple"),
    ],
)
@pytest.mark.parametrize("command", ["compare", "fit"])
def test_bad_robust_settings_are_refused_before_anything_is_written(pixels, tmp_path, capsys, command, args, message):
    out = tmp_path / "out"
    base = [command, "--task", "pixels", "--out", str(out), *QUIET]
    with pytest.raises(SystemExit) as exit_info:
        main(base + args)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("complement: error: ") and "--debug" in lines[1]
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists(), "refused before any directory is made"


def test_robust_refuses_a_directory_without_a_finished_run_and_writes_nothing(pixels, tmp_path, capsys):
    from complement.experiments.runs.comparison import start_comparison
    from complement.experiments.runs.config import TrainConfig

    comparison = start_comparison("pixels", ["ce", "cot"], 1, TrainConfig(), {}, tmp_path / "out", "complement ...")
    saved = (comparison.directory / "compare.json").read_bytes()
    for target, reason in (
        (comparison.directory, "holds no finished run: none of its 2 runs is complete"),
        (tmp_path / "nothing", "does not exist: complement robust evaluates a run directory"),
        (tmp_path, "holds neither compare.json nor config.json"),
    ):
        with pytest.raises(SystemExit, match="1"):
            main(["robust", str(target), *ROBUST])
        error = capsys.readouterr().err.splitlines()[0]
        assert str(target) in error and reason in error, error
    assert (comparison.directory / "compare.json").read_bytes() == saved
    assert sorted(p.name for p in comparison.directory.iterdir()) == [".lock", "compare.json"]


def test_resume_keeps_the_robust_settings_and_points_to_complement_robust(pixels, tmp_path, capsys):
    from complement.experiments.runs.comparison import start_comparison
    from complement.experiments.runs.config import RobustConfig, TrainConfig

    plain = start_comparison("pixels", ["ce"], 1, TrainConfig(), {}, tmp_path / "plain", "c")
    robust = start_comparison("pixels", ["ce"], 1, TrainConfig(), {}, tmp_path / "robust", "c",
                              robust=RobustConfig(eps=[0.1]))  # fmt: skip
    for directory, args, saved in (
        (plain.directory, ["--robust.eps", "[0.1]"], "with no robust evaluation"),
        (robust.directory, ["--robust.eps", "[0.2]"], "with its saved robust settings (attacks [fgsm, pgd], eps [0.1]"),
    ):
        with pytest.raises(SystemExit, match="1"):
            main(["compare", "--resume", str(directory), *args])
        error = capsys.readouterr().err.splitlines()[0]
        assert saved in error and f"complement robust {directory} --robust.eps" in error, error
    assert json.loads((robust.directory / "compare.json").read_text())["robust"]["eps"] == [0.1]


def test_lists_given_space_separated_and_fractions_of_255(pixels, tmp_path):
    out = tmp_path / "out"
    main(["fit", "--task", "pixels", "--out", str(out), *QUIET, "--train.max_epochs", "1",
          "--robust.attacks", "fgsm", "pgd_dlr", "--robust.eps", "8/255", "0.2", "--robust.examples", "9"])  # fmt: skip
    record = json.loads((only(out) / "record.json").read_text())
    assert record["robust"]["settings"] == {"attacks": ["fgsm", "pgd_dlr"], "eps": [8 / 255, 0.2], "steps": 20,
                                            "examples": 9}  # fmt: skip
    assert record["robust"]["examples"] == 9 and robust_key("pgd_dlr", 8 / 255) in record["test"]


def test_records_and_settings_from_before_robustness_still_load(tmp_path):
    old = {"method": "ce", "seed": 0, "history": [{"epoch": 1, "passes": 1, "val_acc": 0.5}], "test": {"test_acc": 1}}
    assert RunRecord.from_dict(old).robust == {}
    from complement.experiments.runs.files import RunSpec

    spec = {"task": "mnist", "method": "ce", "seed": 0, "train": {
        "max_epochs": 1, "batch_size": 8, "lr": 0.1, "optimizer": "sgd", "weight_decay": 0.0, "complement_weight": 1.0,
        "cot_optimizers": "shared", "accumulate_grad_batches": 1}}  # fmt: skip
    assert RunSpec.from_dict(spec, "config.json").robust is None


def test_square_runs_on_a_few_examples_through_the_command_line(pixels, tmp_path, monkeypatch, capsys):
    pytest.importorskip("art")
    from complement.robustness import evaluate

    monkeypatch.setattr(evaluate, "SQUARE_QUERIES", 20)
    main(["fit", "--task", "pixels", "--out", str(tmp_path), *QUIET, "--train.max_epochs", "1"])
    run = only(tmp_path)
    main(["robust", str(run), "--robust.attacks", "[pgd, square]", "--robust.eps", "[0.3]", "--robust.examples", "6"])
    record = json.loads((run / "record.json").read_text())
    assert record["robust"]["examples"] == 6 and robust_key("square", 0.3) in record["test"]
    assert any("Square" in c["name"] for c in record["robust"]["checks"])
