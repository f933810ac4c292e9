"""``compare --tune.lr``: each method's learning rate chosen on the validation split, through the command line:
the choice recomputed from the tuning runs' own histories, the paired runs at the chosen rates, a diverging rate
scored worst, resume that tunes only what is new, and every bad setting refused before anything is written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from complement.experiments.cli import main
from complement.experiments.runs.tuning import choose

QUIET = ["--progress", "false"]
RATES = [0.002, 0.05, 100.0]  # 100 diverges


def only(path: Path) -> Path:
    (found,) = path.iterdir()
    return found


def final_val_acc(run: Path) -> float | None:
    status = json.loads((run / "status.json").read_text())["status"]
    if status == "diverged":
        return None
    return json.loads((run / "history.json").read_text())[-1]["val_acc"]


def test_each_method_trains_at_the_rate_its_validation_runs_chose(pixels, tmp_path):
    out = tmp_path / "out"
    main(["compare", "--task", "pixels", "--methods", "[ce, cot]", "--seeds", "2", "--out", str(out),
          "--tune.lr", json.dumps(RATES), *QUIET])  # fmt: skip
    directory = only(out)
    saved = json.loads((directory / "compare.json").read_text())
    assert saved["tune"] == {"lr": RATES, "seeds": 1, "metric": "val_acc"}
    for method in ("ce", "cot"):
        # the choice, recomputed from each tuning run's own files: the best final val_acc, a diverged rate last
        found = {rate: final_val_acc(directory / "tune" / f"{method}-lr{rate:g}-seed0") for rate in RATES}
        assert found[100.0] is None and all(found[r] is not None for r in RATES[:2])
        best = max(RATES[:2], key=lambda r: (found[r], -r))
        assert saved["tuned_lr"][method] == best
        assert saved["tuning"][method] == {f"{r:g}": [found[r]] for r in RATES}
        for seed in (0, 1):  # the paired runs train at the chosen rate; the others keep the shared settings
            train = json.loads((directory / f"{method}-seed{seed}" / "config.json").read_text())["train"]
            assert train["lr"] == best and train["max_epochs"] == 2
        tuned = json.loads((directory / "tune" / f"{method}-lr0.002-seed0" / "config.json").read_text())
        assert tuned["train"]["lr"] == 0.002 and tuned["robust"] is None
    report = (directory / "report.md").read_text()
    assert "## Learning-rate tuning" in report and "Budget: 6 tuning runs (3 rates × 2 methods × 1 seed)" in report
    assert "| diverged |" in report and "**validation** split" in report


def test_resume_tunes_only_the_new_methods_and_keeps_the_settings(pixels, tmp_path, capsys):
    out = tmp_path / "out"
    main(["compare", "--task", "pixels", "--methods", "[ce]", "--seeds", "1", "--out", str(out),
          "--tune.lr", "[0.002, 0.05]", *QUIET])  # fmt: skip
    directory = only(out)
    first = {p.name: (p / "record.json").stat().st_mtime_ns for p in (directory / "tune").iterdir()}
    main(["compare", "--resume", str(directory), "--methods", "[ce, cot]", *QUIET])
    now = {p.name: p for p in (directory / "tune").iterdir()}
    assert sorted(now) == ["ce-lr0.002-seed0", "ce-lr0.05-seed0", "cot-lr0.002-seed0", "cot-lr0.05-seed0"]
    assert all((now[name] / "record.json").stat().st_mtime_ns == mtime for name, mtime in first.items())
    saved = json.loads((directory / "compare.json").read_text())
    assert set(saved["tuned_lr"]) == {"ce", "cot"}
    with pytest.raises(SystemExit):
        main(["compare", "--resume", str(directory), "--tune.lr", "[0.1, 0.2]", *QUIET])
    assert "--tune options cannot change that" in capsys.readouterr().err


def test_a_damaged_saved_choice_is_refused_on_resume(pixels, tmp_path, capsys):
    out = tmp_path / "out"
    main(["compare", "--task", "pixels", "--methods", "[ce]", "--seeds", "1", "--out", str(out),
          "--tune.lr", "[0.002, 0.05]", *QUIET])  # fmt: skip
    directory = only(out)
    saved = json.loads((directory / "compare.json").read_text())
    for damage in ({"tuned_lr": {"ce": -1}}, {"tuning": {"ce": {"0.05": ["x"]}}}, {"tuned_lr": "0.05"}):
        (directory / "compare.json").write_text(json.dumps({**saved, **damage}))
        with pytest.raises(SystemExit):
            main(["compare", "--resume", str(directory), *QUIET])
        assert "the saved tuned learning rates are damaged" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tune.lr", "[0.1]"], "at least 2 learning rates"),
        (["--tune.lr", "[0.1, -1]"], "learning rates are finite numbers > 0; got -1"),
        (["--tune.lr", "[0.1, 0.1]"], "give each rate once"),
        (["--tune.lr", "[0.1, 0.2]", "--tune.seeds", "0"], "--tune.seeds must be an integer in [1, 100]"),
        (["--tune.lr", "[0.1, 0.2]", "--tune.metric", "test_acc"], "--tune.metric must be one of"),
        (["--tune.seeds", "2"], "--tune needs --tune.lr"),
    ],
)
def test_bad_tuning_settings_are_refused_before_anything_is_written(pixels, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        main(["compare", "--task", "pixels", "--methods", "[ce, cot]", "--seeds", "1", "--out", str(out), *args,
              *QUIET])  # fmt: skip
    assert message in capsys.readouterr().err and not out.exists()


def test_the_choice_rule():
    assert choose({0.1: [0.75, 0.25], 0.01: [0.5, 0.5]}, "val_acc") == 0.01  # a tie: the smaller rate
    assert choose({0.1: [0.5], 0.01: [0.4]}, "val_nll") == 0.01  # lower is better
    assert choose({0.1: [0.99, None], 0.01: [0.2]}, "val_acc") == 0.01  # a diverged run scores worst
    assert not math.isnan(choose({1.0: [None], 2.0: [None]}, "val_acc"))  # all diverged: still a rate
