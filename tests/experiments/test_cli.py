"""The command line end to end on a small in-test task: fit, compare, resume, bad input."""

from __future__ import annotations

import json

import pytest

from complement.experiments.cli import main
from complement.experiments.runs import launch, read_status
from tests.helpers.blobs import blobs_task


def test_compare_end_to_end_writes_report_and_figures(blobs, tmp_path, capsys):
    main(
        [
            "compare",
            "--task",
            "blobs",
            "--methods",
            "[ce, cot, ce_2x]",
            "--seeds",
            "2",
            "--out",
            str(tmp_path),
            "--progress",
            "false",
        ]
    )
    (compare_dir,) = tmp_path.iterdir()
    output = capsys.readouterr().out
    assert f"report: {compare_dir / 'report.md'}" in output
    for method in ("ce", "cot", "ce_2x"):
        assert method in output
        for seed in (0, 1):
            run = compare_dir / f"{method}-seed{seed}"
            assert read_status(run).status == "complete"
            assert (run / "logs" / "metrics.csv").stat().st_size > 0 and (run / "predictions.pt").exists()
    history = json.loads((compare_dir / "cot-seed0" / "history.json").read_text())
    assert [row["passes"] for row in history] == [10, 20]  # 5 batches x 2 passes per epoch
    ce_2x = json.loads((compare_dir / "ce_2x-seed0" / "history.json").read_text())
    assert len(ce_2x) == 4 and ce_2x[-1]["passes"] == 20  # twice the epochs, same passes as COT
    report = (compare_dir / "report.md").read_text()
    command = f"complement compare --task blobs --methods '[ce, cot, ce_2x]' --seeds 2 --out {tmp_path}"
    command += " --progress false"
    assert json.loads((compare_dir / "compare.json").read_text())["command"] == command, "main()'s arguments"
    assert command in report
    pngs = sorted(compare_dir.rglob("*.png"))
    assert len(pngs) >= 3
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
        assert png.name in report


def test_compare_resume_finishes_only_what_is_missing(blobs, tmp_path, monkeypatch):
    from complement.experiments.runs import fit

    real_fit_run = fit.fit_run
    calls = []

    def failing_fit_run(task, spec, run_dir, progress=True, resume=False, jobs=1):
        calls.append((spec.method, spec.seed, resume))
        if spec.method == "cot" and spec.seed == 1 and not resume:
            run_dir.joinpath("status.json").write_text(json.dumps({"status": "interrupted"}))
            raise KeyboardInterrupt
        return real_fit_run(task, spec, run_dir, progress=progress, resume=resume, jobs=jobs)

    monkeypatch.setattr(fit, "fit_run", failing_fit_run)
    with pytest.raises(SystemExit, match="130"):
        main(
            [
                "compare",
                "--task",
                "blobs",
                "--methods",
                "[ce, cot]",
                "--seeds",
                "2",
                "--out",
                str(tmp_path),
                "--progress",
                "false",
            ]
        )
    (compare_dir,) = tmp_path.iterdir()
    assert not (compare_dir / "report.md").exists()  # an interrupted comparison does not look complete
    assert read_status(compare_dir / "cot-seed1").status == "interrupted"
    calls.clear()
    main(["compare", "--resume", str(compare_dir), "--progress", "false"])
    assert calls == [("cot", 1, True)]
    assert (compare_dir / "report.md").exists()


def test_fit_writes_a_new_directory_each_time(blobs, tmp_path, capsys):
    args = ["fit", "--task", "blobs", "--method", "cot", "--out", str(tmp_path), "--progress", "false"]
    main(args)
    main(args)
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 2 and all(read_status(run).status == "complete" for run in runs)
    assert "test_acc" in capsys.readouterr().out


def test_interrupted_fit_saved_the_task_as_asked_for_resume(blobs, tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="fail=True"):
        main(
            ["fit", "--task", "blobs", "--task_options", "{fail: true}", "--out", str(tmp_path), "--progress", "false",
             "--debug"]
        )  # fmt: skip
    (run,) = tmp_path.iterdir()
    assert read_status(run).status == "failed"
    saved = json.loads((run / "config.json").read_text())
    assert saved["task"] == "blobs" and saved["task_options"] == {"fail": True}
    seen = []
    monkeypatch.setattr(
        launch, "build_task", lambda task, options, seed: seen.append((task, options)) or blobs_task(seed)
    )
    main(["fit", "--resume", str(run), "--progress", "false"])
    assert seen == [("blobs", {"fail": True})] and read_status(run).status == "complete"


def test_config_file_and_unknown_key(blobs, tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("task: blobs\nmethods: [ce]\nseeds: 1\ntrain:\n  max_epochs: 1\nprogress: false\n")
    main(["compare", "--config", str(good), "--out", str(tmp_path / "out")])
    assert "report:" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: blobs\nepochs: 3\n")
    with pytest.raises(SystemExit):
        main(["compare", "--config", str(bad)])
    assert "epochs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,error,message",
    [
        (["compare", "--task", "nope", "--seeds", "1"], ValueError, "unknown task 'nope'"),
        (["compare", "--task", "blobs", "--methods", "[ce, magic]"], ValueError, "unknown method 'magic'"),
        (["compare", "--task", "blobs", "--seeds", "0"], ValueError, "seeds must be an integer >= 1"),
        (
            ["compare", "--task", "blobs", "--train.optimizer", "lion", "--seeds", "1", "--methods", "[ce]"],
            ValueError,
            "unknown optimizer 'lion'",
        ),
        (["fit", "--task", "blobs", "--method", "magic"], ValueError, "unknown method 'magic'"),
        (["compare", "--resume", "/nonexistent/dir"], FileNotFoundError, "not a comparison directory"),
        (["fit", "--resume", "/nonexistent/dir"], FileNotFoundError, "not a run directory"),
    ],
)
def test_bad_input_is_a_clear_error(blobs, tmp_path, args, error, message):
    with pytest.raises(error, match=message):
        main(args + ["--out", str(tmp_path), "--progress", "false", "--debug"])
    if "--resume" not in args and args[0] == "compare":
        assert not any(tmp_path.iterdir()) or all(not (d / "report.md").exists() for d in tmp_path.iterdir())
