"""The methods by name: the comp-sum methods carry their tau (``comp_sum_tau0.5``), end to end."""

from __future__ import annotations

import json

import pytest

from complement.experiments.cli import main
from complement.experiments.runs import METHODS, get_method, read_status
from complement.experiments.runs.methods import COMP_SUM_PATTERN
from complement.losses import comp_sum as comp_sum_module


@pytest.mark.parametrize(
    "name,tau", [("comp_sum_tau0", 0.0), ("comp_sum_tau0.5", 0.5), ("comp_sum_tau1.25", 1.25), ("comp_sum_tau10", 10.0)]
)
def test_comp_sum_methods_carry_tau(name, tau):
    method = get_method(name)
    assert (method.mode, method.primary_loss, method.primary_loss_kwargs) == ("off", "comp_sum", {"tau": tau})
    assert method.epoch_factor == 1 and f"tau {name.removeprefix('comp_sum_tau')}" in method.summary
    assert isinstance(method.primary_loss_kwargs["tau"], float)


def test_other_methods_have_no_loss_kwargs():
    assert all(get_method(name).primary_loss_kwargs is None for name in METHODS if name != COMP_SUM_PATTERN)


@pytest.mark.parametrize(
    "name,message",
    [
        ("comp_sum_tau-1", "unknown method 'comp_sum_tau-1' .a comp-sum method names its tau >= 0"),
        ("comp_sum_taux", "unknown method 'comp_sum_taux' .a comp-sum method"),
        ("comp_sum_tau", "unknown method 'comp_sum_tau' "),
        ("comp_sum", "unknown method 'comp_sum' .*a bare comp_sum has no default tau"),
        (COMP_SUM_PATTERN, "unknown method 'comp_sum_tau<τ>'"),
        ("comp_sum_tau1e-3", "unknown method 'comp_sum_tau1e-3'"),
        ("comp_sum_tau.5", "unknown method 'comp_sum_tau.5'"),
        ("comp_sum_tau0.5.1", "unknown method 'comp_sum_tau0.5.1'"),
        ("comp_sum_tau 0.5", "unknown method 'comp_sum_tau 0.5'"),
        ("comp_sum_tau\u0661", "unknown method"),  # an Arabic-Indic digit one
        ("comp_sum_tau0.50", "unknown method 'comp_sum_tau0.50': write tau in its one spelling, comp_sum_tau0.5 "),
        ("comp_sum_tau1.0", "write tau in its one spelling, comp_sum_tau1 "),
        ("comp_sum_tau00", "write tau in its one spelling, comp_sum_tau0 "),
        ("comp_sum_tau" + "9" * 17, "at most 16 characters"),
    ],
)
def test_bad_comp_sum_names_are_unknown_methods(name, message):
    with pytest.raises(ValueError, match=message):
        get_method(name)


def test_list_shows_the_comp_sum_form(capsys):
    main(["list"])
    line = next(line for line in capsys.readouterr().out.splitlines() if COMP_SUM_PATTERN in line)
    assert "comp_sum_tau0.5" in line and "τ >= 0" in line


def test_fit_trains_the_comp_sum_loss_with_tau(blobs, tmp_path, monkeypatch, capsys):
    seen = []
    real = comp_sum_module.comp_sum_loss

    def spy(input, target, weight=None, **kwargs):
        seen.append(kwargs["tau"])
        return real(input, target, weight, **kwargs)

    monkeypatch.setattr(comp_sum_module, "comp_sum_loss", spy)  # what CompSumLoss.forward calls
    main(["fit", "--task", "blobs", "--method", "comp_sum_tau0.5", "--train.max_epochs", "1", "--out", str(tmp_path),
          "--progress", "false"])  # fmt: skip
    (run,) = tmp_path.iterdir()
    assert "comp_sum_tau0.5-seed0" in run.name and read_status(run).status == "complete"
    assert json.loads((run / "config.json").read_text())["method"] == "comp_sum_tau0.5"
    assert len(seen) == 5 and set(seen) == {0.5}  # 160 samples / batch 32: 5 training steps, one loss each
    assert "test_acc" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["comp_sum_tau-1", "comp_sum_taux", "comp_sum"])
def test_bad_comp_sum_method_on_the_command_line(blobs, tmp_path, name):
    with pytest.raises(ValueError, match=f"unknown method '{name}'"):
        main(["fit", "--task", "blobs", "--method", name, "--out", str(tmp_path), "--progress", "false", "--debug"])
    assert not any(tmp_path.iterdir())


def test_compare_holds_several_taus(blobs, tmp_path, capsys):
    main(["compare", "--task", "blobs", "--methods", "[ce, comp_sum_tau0.5, comp_sum_tau2]", "--seeds", "1",
          "--train.max_epochs", "1", "--out", str(tmp_path), "--progress", "false"])  # fmt: skip
    (compare_dir,) = tmp_path.iterdir()
    for name in ("ce", "comp_sum_tau0.5", "comp_sum_tau2"):
        assert read_status(compare_dir / f"{name}-seed0").status == "complete"
    report = (compare_dir / "report.md").read_text()
    assert "comp_sum_tau0.5" in report and "comp_sum_tau2" in report
