"""The harness's adversarial-training methods (``pgd_at``, ``trades``, ``cot_pgd``) through the command
line: the settings they train with (the radius from the task's card unless given), their attack's passes
counted for equal compute, robustness they buy on a real task, and every bad input refused before
anything is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from complement.experiments.cli import main
from complement.experiments.report.records import robust_key
from complement.experiments.runs.adversarial import adversarial_training
from complement.experiments.runs.config import ResolvedTrainConfig, TrainConfig
from complement.experiments.runs.methods import get_method
from tests.helpers.pixels import pixel_task

QUIET = ["--progress", "false"]
TRAIN_BATCHES = 3  # 120 training images in batches of 40


def only(path: Path) -> Path:
    (found,) = path.iterdir()
    return found


def test_the_methods_are_pgd_at_trades_and_cot_on_pgd_examples():
    assert (get_method("pgd_at").mode, get_method("pgd_at").adversarial) == ("off", "pgd_at")
    assert (get_method("trades").mode, get_method("trades").adversarial) == ("off", "trades")
    assert (get_method("cot_pgd").mode, get_method("cot_pgd").adversarial) == ("alternate", "pgd_at")
    assert get_method("cot").adversarial is None and get_method("ce").adversarial is None


def test_the_attack_is_built_from_the_run_settings_and_the_task_normalization():
    task = pixel_task()
    config = TrainConfig(adv_steps=7, adv_step_size="1/255", trades_beta=3.0).resolved(task.defaults)
    built = adversarial_training("trades", config, task)
    assert built is not None
    assert (built.kind, built.eps, built.steps, built.step_size, built.beta) == ("trades", 0.15, 7, 1 / 255, 3.0)
    assert (list(built.mean), list(built.std)) == (task.info["mean"], task.info["std"])
    assert adversarial_training("cot", config, task) is None
    given = TrainConfig(adv_eps="8/255").resolved(task.defaults)  # a fraction, kept as its number
    assert given.adv_eps == 8 / 255 and adversarial_training("pgd_at", given, task).eps == 8 / 255


def test_compare_trains_each_method_on_its_examples_and_counts_the_attack_passes(pixels, tmp_path):
    out = tmp_path / "out"
    methods = "[ce, cot, pgd_at, trades, cot_pgd]"
    main(["compare", "--task", "pixels", "--methods", methods, "--seeds", "1", "--out", str(out),
          "--train.adv_steps", "3", *QUIET])  # fmt: skip
    directory = only(out)
    # a micro-batch: one pass a COT phase, the attack's 3 steps, TRADES' pass on the adversarial inputs
    per_batch = {"ce": 1, "cot": 2, "pgd_at": 1 + 3, "trades": 1 + 3 + 1, "cot_pgd": 2 + 3}
    weights = {}
    for method, passes in per_batch.items():
        run = directory / f"{method}-seed0"
        train = json.loads((run / "config.json").read_text())["train"]
        assert (train["adv_eps"], train["adv_steps"], train["trades_beta"]) == (0.15, 3, 6.0)
        history = json.loads((run / "history.json").read_text())
        assert [row["passes"] for row in history] == [passes * TRAIN_BATCHES * epoch for epoch in (1, 2)]
        weights[method] = (run / "predictions.pt").read_bytes()
        steps = json.loads((run / "record.json").read_text())["facts"]["optimizer_steps"]
        assert steps == (2 if method in ("cot", "cot_pgd") else 1) * TRAIN_BATCHES * 2  # the attack adds no step
    assert len(set(weights.values())) == len(weights)  # each method trained its own way
    report = (directory / "report.md").read_text()
    assert "`pgd_at` 24" in report and "`trades` 30" in report and "`cot_pgd` 30" in report
    assert "Optimizer steps per run (mean): `ce` 6, `cot` 12, `pgd_at` 6, `trades` 6, `cot_pgd` 12." in report
    assert "| Passes | Optimizer steps |" in report  # the test-metrics table states both


def test_adversarial_training_buys_robust_accuracy_on_digits_through_the_cli(tmp_path):
    # the command users run (its main(), in this process), on a real task: PGD-AT at the card's radius (0.1)
    # against CE
    out = tmp_path / "out"
    main(["compare", "--task", "digits", "--methods", "[ce, pgd_at]", "--seeds", "1", "--out", str(out),
          "--train.max_epochs", "6", "--train.adv_steps", "5", "--robust.attacks", "[fgsm, pgd]",
          "--robust.eps", "[0.1]", "--robust.examples", "200", *QUIET])  # fmt: skip
    directory = only(out)
    test = {m: json.loads((directory / f"{m}-seed0" / "record.json").read_text())["test"] for m in ("ce", "pgd_at")}
    key = robust_key("worst", 0.1)
    assert test["pgd_at"][key] > test["ce"][key] + 0.15, (test["ce"][key], test["pgd_at"][key])
    assert test["pgd_at"]["test_acc"] > 0.85  # robust, not broken
    assert json.loads((directory / "pgd_at-seed0" / "config.json").read_text())["train"]["adv_eps"] == 0.1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "words", "--method", "pgd_at"], "method pgd_at: task 'words' is a text task; .* no pixel space"),
        (["--task", "embeddings", "--method", "trades"],
         r"method trades: the training inputs of task 'embeddings' are not images in \[0, 1\]"),
        (["--train.adv_eps", "0"], r"train.adv_eps must be a number in \(0, 1\]"),
        (["--train.adv_eps", "1.5"], r"train.adv_eps must be a number in \(0, 1\].*got 1.5"),
        (["--train.adv_eps", "nan"], r"train.adv_eps must be a number in \(0, 1\]"),
        (["--train.adv_eps", "8/0"], "train.adv_eps: radii are numbers in .* or fractions such as 8/255; got '8/0'"),
        (["--train.adv_step_size", "-0.1"], r"train.adv_step_size must be a number in \(0, 1\]"),
        (["--train.adv_steps", "0"], "train.adv_steps must be an integer >= 1; got 0"),
        (["--train.trades_beta", "-1"], "train.trades_beta must be a finite number >= 0"),
    ],
)  # fmt: skip
def test_bad_adversarial_settings_are_refused_in_one_line_before_anything_is_written(
    pixels, tmp_path, capsys, args, message
):
    out = tmp_path / "out"
    given = args if "--method" in args else ["--task", "pixels", "--method", "trades", *args]
    with pytest.raises(SystemExit) as stopped:
        main(["fit", *given, "--out", str(out), *QUIET])
    assert stopped.value.code == 1  # a setting the parser accepts and the run refuses
    error = capsys.readouterr().err
    assert error.startswith("complement: error: ")
    assert re.search(message, error), error
    assert not out.exists()


def test_compare_refuses_an_adversarial_method_for_a_text_task_and_when_added_on_resume(pixels, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        main(["compare", "--task", "words", "--methods", "[ce, cot_pgd]", "--seeds", "1", "--out", str(out), *QUIET])
    assert "method cot_pgd: task 'words' is a text task" in capsys.readouterr().err and not out.exists()
    main(["compare", "--task", "words", "--methods", "[ce]", "--seeds", "1", "--out", str(out), *QUIET])
    directory = only(out)
    saved = (directory / "compare.json").read_bytes()
    with pytest.raises(SystemExit):
        main(["compare", "--resume", str(directory), "--methods", "[ce, pgd_at]", *QUIET])
    assert "method pgd_at: task 'words' is a text task" in capsys.readouterr().err
    assert (directory / "compare.json").read_bytes() == saved and not (directory / "pgd_at-seed0").exists()


def test_resume_keeps_the_adversarial_settings(pixels, tmp_path, capsys):
    out = tmp_path / "out"
    main(["fit", "--task", "pixels", "--method", "pgd_at", "--train.adv_steps", "2", "--out", str(out), *QUIET])
    run = only(out)
    with pytest.raises(SystemExit):
        main(["fit", "--resume", str(run), "--train.adv_eps", "0.3", *QUIET])
    assert "--train.adv_eps 0.3 (saved: 0.15)" in capsys.readouterr().err


def test_runs_saved_before_the_adversarial_settings_load_with_their_fallbacks():
    saved = TrainConfig().resolved({"optimizer": "adam", "lr": 0.1, "batch_size": 8, "max_epochs": 1}).to_dict()
    for key in ("adv_eps", "adv_steps", "adv_step_size", "trades_beta"):
        del saved[key]
    loaded = ResolvedTrainConfig.from_saved(saved, "old/config.json")
    assert (loaded.adv_eps, loaded.adv_steps, loaded.adv_step_size, loaded.trades_beta) == (None, 10, None, 6.0)
