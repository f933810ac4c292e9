"""The command line shows its choices, keeps parse errors to one line, takes the hardware and a
warmup schedule, says what a resume restored, keeps every attempt's metrics, and prints plain
epoch lines where there is no terminal."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from complement.experiments.cli import main
from complement.experiments.parsing import join_list_values
from complement.experiments.runs import fit as run_fit
from complement.experiments.runs.config import ResolvedTrainConfig, TrainConfig
from complement.experiments.runs.methods import get_method
from complement.experiments.runs.module import TaskModule, WarmupLinear

FIT = ["fit", "--task", "blobs", "--method", "ce", "--progress", "false"]


def one_run(parent: Path) -> Path:
    (run,) = parent.iterdir()
    return run


def test_help_shows_each_options_choices_and_real_default(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["fit", "--help"])
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # the help wraps lines
    assert "choices: adam, adamw, sgd; default: the task's, else adam" in text
    assert "choices: none, step, cosine, warmup_linear; default: the task's, else none" in text
    assert "choices: ce, cot, cot_joint, ce_2x," in text and "comp_sum_tau<τ>; default: cot" in text
    assert "choices: auto, cpu, gpu, cuda, mps; default: the task's, else auto" in text
    assert "default: mnist" in text and "digits" in text  # the task names
    assert "default: null" not in text


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["fit", "--train.lr", "abc"], "complement: error: --train.lr takes a number; got 'abc'"),
        (["fit", "--seed", "x"], "complement: error: --seed takes an integer; got 'x'"),
        (
            ["fit", "--train.lr_milestones", "[3, x]"],
            "complement: error: --train.lr_milestones takes a list of epochs or of fractions of the run; got 'x', "
            "e.g. --train.lr_milestones '[100, 150]' (or 100 150; fractions of the run: '[0.5, 0.75]')",
        ),
        (["fit", "--nope", "1"], "complement: error: unrecognized arguments: --nope 1"),
        (["fot"], "complement: error: argument subcommand: invalid choice: 'fot'"),
    ],
)
def test_a_parse_error_is_one_line_and_a_pointer_to_help(capsys, args, line):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith(line), err
    assert err[1].endswith("--help lists the options)")


def test_list_values_may_be_given_space_separated():
    assert join_list_values(["--methods", "ce", "cot", "--seeds", "2"]) == ["--methods", "[ce, cot]", "--seeds", "2"]
    assert join_list_values(["--methods", "[ce, cot]"]) == ["--methods", "[ce, cot]"]
    assert join_list_values(["--train.lr_milestones", "3", "--x"]) == ["--train.lr_milestones", "[3]", "--x"]


def test_space_separated_milestones_reach_the_run(blobs, tmp_path):
    schedule = ["--train.lr_schedule", "step", "--train.lr_milestones", "1", "2", "--train.max_epochs", "3"]
    main([*FIT, *schedule, "--out", str(tmp_path)])
    saved = json.loads((one_run(tmp_path) / "config.json").read_text())["train"]
    assert saved["lr_milestones"] == [1, 2]


def test_the_hardware_settings_reach_lightning_and_the_config(blobs, tmp_path, monkeypatch):
    seen = {}
    trainer = run_fit.pl.Trainer

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return trainer(*args, **kwargs)

    monkeypatch.setattr(run_fit.pl, "Trainer", spy)
    hardware = ["--train.accelerator", "cpu", "--train.precision", "bf16-mixed", "--train.max_epochs", "1"]
    main([*FIT, *hardware, "--out", str(tmp_path)])
    assert (seen["accelerator"], seen["devices"], seen["precision"]) == ("cpu", 1, "bf16-mixed")
    run = one_run(tmp_path)
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["accelerator"], saved["devices"], saved["precision"]) == ("cpu", 1, "bf16-mixed")
    facts = json.loads((run / "record.json").read_text())["facts"]
    assert facts["machine"]["accelerator"] == "CPUAccelerator" and facts["train"]["precision"] == "bf16-mixed"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"accelerator": "tpu9"}, "train.accelerator must be one of"),
        ({"precision": "8-bit"}, "train.precision must be one of"),
        ({"devices": 2}, "train.devices 2: complement fit/compare train one process on one device"),
        ({"devices": 0}, "train.devices must be an integer >= 1"),
        ({"lr_warmup": 1.0}, r"train.lr_warmup must be a fraction of the run's steps in \[0, 1\)"),
    ],
)
def test_bad_hardware_and_warmup_settings_are_refused(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting).resolved({})


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_warmup_linear_matches_hugging_faces_schedule():
    transformers = pytest.importorskip("transformers")
    config = TrainConfig(lr_schedule="warmup_linear", lr_warmup=0.25, max_epochs=2, lr=1.0).resolved({})
    module = TaskModule(torch.nn.Linear(2, 3), 3, -100, get_method("ce"), config, steps_per_epoch=4)
    (optimizer,), (scheduler,) = module.configure_optimizers()
    assert scheduler["interval"] == "step"
    reference_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = transformers.get_linear_schedule_with_warmup(reference_optimizer, 2, 8)
    ours = []
    theirs = []
    for _ in range(9):
        ours.append(optimizer.param_groups[0]["lr"])
        theirs.append(reference_optimizer.param_groups[0]["lr"])
        scheduler["scheduler"].step()
        reference.step()
    assert ours == pytest.approx(theirs) and ours[:3] == [0.0, 0.5, 1.0] and ours[-1] == 0.0
    assert WarmupLinear(0, 4)(0) == 1.0


def test_a_schedule_over_the_run_cannot_be_stretched_on_resume(blobs, tmp_path, capsys):
    main([*FIT, "--train.lr_schedule", "warmup_linear", "--train.max_epochs", "1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["fit", "--resume", str(one_run(tmp_path)), "--train.max_epochs", "2"])
    assert "cannot change on resume under lr_schedule 'warmup_linear'" in capsys.readouterr().err


def test_resume_says_what_it_restored_and_keeps_the_earlier_metrics(blobs, tmp_path, capsys):
    main([*FIT, "--train.max_epochs", "1", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    capsys.readouterr()
    main(["fit", "--resume", str(run), "--train.max_epochs", "2", "--progress", "false"])
    assert "complement: resumed from epoch=0-step=5.ckpt: epoch 1 of 2 done, optimizer step 5; 1 epoch(s) left" in (
        capsys.readouterr().err
    )
    first, second = (list(csv.DictReader((run / "logs" / name).open())) for name in ("metrics.1.csv", "metrics.csv"))
    assert {row["epoch"] for row in first if row.get("val_acc")} == {"0"}
    assert {row["epoch"] for row in second if row.get("val_acc")} == {"1"}


def test_progress_without_a_terminal_prints_a_line_per_epoch(blobs, tmp_path, capsys):
    main(["fit", "--task", "blobs", "--method", "cot", "--train.max_epochs", "2", "--out", str(tmp_path)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert "train_loss" in lines[0] and "cot_loss" in lines[0] and "val_acc" in lines[0]


def test_a_run_saved_before_the_hardware_settings_still_resumes(blobs, tmp_path):
    main([*FIT, "--train.max_epochs", "1", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    for key in ("lr_warmup", "accelerator", "devices", "precision"):
        del config["train"][key]
    (run / "config.json").write_text(json.dumps(config))
    main(["fit", "--resume", str(run), "--train.max_epochs", "2", "--progress", "false"])
    saved = ResolvedTrainConfig.from_saved(json.loads((run / "config.json").read_text())["train"], "x")
    assert (saved.accelerator, saved.devices, saved.precision) == ("auto", 1, "32-true")


def test_list_task_shows_its_options_defaults_and_meanings(capsys):
    main(["list", "--task", "text_file"])
    text = capsys.readouterr().out
    assert text.startswith("text_file: ")
    assert "data_path       required  your CSV / TSV / JSONL file" in text
    assert "max_length      128" in text and "--task_options" in text


def test_list_names_the_task_option(capsys):
    main(["list"])
    assert "complement list --task NAME shows a task's options" in capsys.readouterr().out


def test_print_config_shows_the_values_a_run_would_use(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["fit", "--task", "digits", "--train.lr", "0.01", "--print_config"])
    assert exit.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["task"], printed["method"], printed["seed"]) == ("digits", "cot", 0)
    assert printed["train"]["lr"] == 0.01, "given values stay"
    assert printed["train"]["max_epochs"] == 20 and printed["train"]["optimizer"] == "adam", "digits' card"
    assert printed["train"]["precision"] == "32-true"


def test_a_seed_among_the_task_options_is_refused_for_seed(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--task", "digits", "--task_options.seed", "1"])
    assert "task_options has a seed (1); a run's seed is set with --seed" in capsys.readouterr().err
