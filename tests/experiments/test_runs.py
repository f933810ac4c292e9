"""Runs: honest status, divergence, resume rules, the saved configuration, untrusted checkpoints."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import time

import pytest
import torch

from complement import _atomic as atomic
from complement._atomic import atomic_path, write_text
from complement.experiments.cli import main
from complement.experiments.runs import latest_checkpoint, read_status, write_status
from complement.training.checkpointing import checksum_path
from complement.training.divergence import DivergenceError, DivergenceGuard

FIT = ["fit", "--task", "blobs", "--method", "cot", "--progress", "false", "--debug"]


def one_run(tmp_path):
    (run,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    return run


# --- status ---------------------------------------------------------------------------------


def test_a_running_status_whose_process_is_gone_reads_interrupted(tmp_path):
    write_status(tmp_path, "running")
    assert read_status(tmp_path).status == "running" and "pid" in read_status(tmp_path).detail
    data = json.loads((tmp_path / "status.json").read_text())
    data["pid"] = 2**22 + 12345  # no such process
    (tmp_path / "status.json").write_text(json.dumps(data))
    found = read_status(tmp_path)
    assert found.status == "interrupted" and "no longer runs" in found.detail
    data.update(pid=os.getpid(), process_start="1")  # our pid, but another process's start time: a reused pid
    (tmp_path / "status.json").write_text(json.dumps(data))
    assert read_status(tmp_path).status == "interrupted"


def test_a_run_on_another_host_is_judged_by_its_heartbeat(tmp_path):
    write_status(tmp_path, "running")
    data = json.loads((tmp_path / "status.json").read_text())
    data["host"] = socket.gethostname() + "-elsewhere"
    (tmp_path / "status.json").write_text(json.dumps(data))
    assert read_status(tmp_path).status == "running"
    data["heartbeat"] = time.time() - 3600
    (tmp_path / "status.json").write_text(json.dumps(data))
    found = read_status(tmp_path)
    assert found.status == "interrupted" and "no heartbeat for" in found.detail


def test_status_command_reports_each_run(blobs, tmp_path, capsys):
    main(["compare", "--task", "blobs", "--methods", "[ce, cot]", "--seeds", "1", "--out", str(tmp_path),
          "--progress", "false"])  # fmt: skip
    compare_dir = one_run(tmp_path)
    capsys.readouterr()
    main(["status", str(compare_dir)])
    out = capsys.readouterr().out
    assert "report.md written" in out and out.count("complete") == 2


# --- divergence -----------------------------------------------------------------------------


class Steps:
    def __init__(self, values):
        self.values = list(values)
        self.last_step_logs = {}


class FakeTrainer:
    global_step = 0


def feed(guard, values):
    trainer, module = FakeTrainer(), Steps(values)
    for step, value in enumerate(values, start=1):
        trainer.global_step = step
        module.last_step_logs = {"train_loss": torch.tensor(value)}
        guard.on_train_batch_end(trainer, module, None, None, step)


def test_divergence_rule_is_first_value_plus_factor_times_its_scale():
    feed(DivergenceGuard(), [2.3, 5.0, 25.2])  # 2.3 + 10 * 2.3 = 25.3
    with pytest.raises(DivergenceError, match=r"train_loss = 25.4, above the limit 25.3 \(first step's value 2.3"):
        feed(DivergenceGuard(), [2.3, 25.4])
    with pytest.raises(DivergenceError, match="non-finite"):
        feed(DivergenceGuard(), [2.3, float("nan")])
    feed(DivergenceGuard(), [-0.5, -0.1, 9.4])  # |first| < 1: the scale is 1, limit -0.5 + 10
    guard = DivergenceGuard()
    feed(guard, [0.9])
    state = guard.state_dict()
    restored = DivergenceGuard()
    restored.load_state_dict(state)
    with pytest.raises(DivergenceError):
        feed(restored, [10.95])  # the rule survives a resume: first stays 0.9, limit 10.9


def test_a_diverging_run_stops_as_diverged_and_keeps_its_last_good_checkpoint(blobs, tmp_path, capsys):
    with pytest.raises(SystemExit, match="1"):
        main(["fit", "--task", "blobs", "--method", "ce", "--train.lr", "1e6", "--train.max_epochs", "3",
              "--train.checkpoint_every_n_steps", "1", "--out", str(tmp_path), "--progress", "false"])  # fmt: skip
    err = capsys.readouterr().err
    assert "training diverged at step" in err and "Traceback" not in err
    run = one_run(tmp_path)
    found = read_status(run)
    assert found.status == "diverged" and "diverged" in found.detail
    assert not (run / "predictions.pt").exists() and not (run / "record.json").exists()
    saved = torch.load(latest_checkpoint(run), weights_only=True)
    assert all(torch.isfinite(value).all() for value in saved["state_dict"].values())


# --- resume rules, the saved configuration, history -----------------------------------------


def test_resume_takes_more_epochs_and_refuses_other_changes_naming_the_rule(blobs, tmp_path, capsys):
    main([*FIT, "--train.max_epochs", "1", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    with pytest.raises(
        ValueError, match=r"--train.lr 0.5 \(saved: 0.01\) would change it.*--train.max_epochs to train"
    ):
        main(["fit", "--resume", str(run), "--train.lr", "0.5", "--debug"])
    with pytest.raises(ValueError, match=r"--method 'ce' \(saved: 'cot'\)"):
        main(["fit", "--resume", str(run), "--method", "ce", "--debug"])
    with pytest.raises(ValueError, match="may only grow"):
        main(["fit", "--resume", str(run), "--train.max_epochs", "0", "--debug"])
    main(["fit", "--resume", str(run), "--train.max_epochs", "3", "--progress", "false"])
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["train"]["max_epochs"] == 3
    # the same run trained 3 epochs at once
    main([*FIT, "--train.max_epochs", "3", "--out", str(tmp_path / "again")])
    again = json.loads((one_run(tmp_path / "again") / "history.json").read_text())
    assert history == again


def test_history_train_loss_is_the_epochs_own(blobs, tmp_path):
    main([*FIT, "--train.max_epochs", "3", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    history = json.loads((run / "history.json").read_text())
    import csv

    rows = [row for row in csv.DictReader((run / "logs" / "metrics.csv").open()) if row.get("train_loss_epoch")]
    logged = {int(row["epoch"]) + 1: float(row["train_loss_epoch"]) for row in rows}
    assert [row["train_loss"] for row in history] == pytest.approx([logged[e] for e in (1, 2, 3)], rel=1e-6)


def test_fit_resume_of_a_compare_run_rebuilds_the_same_task(blobs, tmp_path, monkeypatch):
    main(["compare", "--task", "blobs", "--methods", "[cot]", "--seeds", "1", "--task_options", "{fail: false}",
          "--out", str(tmp_path), "--progress", "false"])  # fmt: skip
    run = one_run(tmp_path) / "cot-seed0"
    spec = json.loads((run / "config.json").read_text())
    assert spec["task"] == "blobs" and spec["task_options"] == {"fail": False}
    assert spec["method"] == "cot" and spec["seed"] == 0 and spec["train"]["lr"] == 0.01
    main(["fit", "--resume", str(run), "--train.max_epochs", "3", "--progress", "false"])
    assert read_status(run).status == "complete"


def test_keep_best_keeps_one_best_checkpoint_apart_from_the_latest(blobs, tmp_path):
    main([*FIT, "--train.max_epochs", "3", "--train.keep_best", "val_acc", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    names = sorted(path.name for path in (run / "checkpoints").glob("*.ckpt"))
    assert len([n for n in names if n.startswith("best-")]) == 1 and "epoch=2-step=15.ckpt" in names
    assert latest_checkpoint(run).name == "epoch=2-step=15.ckpt"
    with pytest.raises(ValueError, match=r"keep_best must be one of \['val_acc'"):
        main([*FIT, "--train.keep_best", "train_acc", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()  # checked before any directory is made


def test_resume_refuses_a_live_run(blobs, tmp_path):
    main([*FIT, "--train.max_epochs", "1", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    write_status(run, "running")  # as if this very process were training it
    with pytest.raises(RuntimeError, match="is still running"):
        main(["fit", "--resume", str(run), "--debug"])


def test_a_damaged_settings_file_is_a_clear_error(blobs, tmp_path, capsys):
    main(["compare", "--task", "blobs", "--methods", "[ce]", "--seeds", "1", "--out", str(tmp_path),
          "--progress", "false"])  # fmt: skip
    compare_dir = one_run(tmp_path)
    (compare_dir / "compare.json").write_text('{"task": "blo')
    with pytest.raises(SystemExit, match="1"):
        main(["compare", "--resume", str(compare_dir)])
    err = capsys.readouterr().err
    assert "compare.json is damaged" in err and "Traceback" not in err


@pytest.mark.parametrize("checksum", ["rewritten", "removed"])
def test_an_untrusted_checkpoint_is_not_unpickled(blobs, tmp_path, checksum, capsys):
    """Whoever crafted it may have written its checksum too: then the load itself refuses it."""
    main([*FIT, "--train.max_epochs", "1", "--out", str(tmp_path)])
    run = one_run(tmp_path)
    path = latest_checkpoint(run)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["payload"] = Exploit()
    torch.save(checkpoint, path)
    if checksum == "rewritten":
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        checksum_path(path).write_text(f"{digest}  {path.name}\n")
    else:
        checksum_path(path).unlink()
    (run / "status.json").write_text(json.dumps({"status": "interrupted"}))
    marker = tmp_path / "pwned"
    os.environ["COMPLEMENT_TEST_MARKER"] = str(marker)
    try:
        if checksum == "rewritten":
            with pytest.raises(Exception, match="(?i)weights_only|unpickl"):
                main(["fit", "--resume", str(run), "--train.max_epochs", "2", "--debug"])
        else:  # verified by loading it with weights_only=True: refused, set aside, never unpickled
            main(["fit", "--resume", str(run), "--train.max_epochs", "2"])
            assert "is damaged: it cannot be read (UnpicklingError" in capsys.readouterr().err
    finally:
        del os.environ["COMPLEMENT_TEST_MARKER"]
    assert not marker.exists()


class Exploit:
    def __reduce__(self):
        return (_touch_marker, ())


def _touch_marker():
    open(os.environ["COMPLEMENT_TEST_MARKER"], "w").close()


# --- atomic files ---------------------------------------------------------------------------


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "report.md"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    write_text(target, "new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    "method,schedule,expected",
    [
        ("cot", ["--train.lr_schedule", "step", "--train.lr_milestones", "[1]", "--train.lr_gamma", "0.5"], 0.005),
        ("ce_2x", ["--train.lr_schedule", "step", "--train.lr_milestones", "[1]", "--train.lr_gamma", "0.5"], 0.005),
        # fractions of the run: ce_2x's 4 epochs halve after 2 and 3
        (
            "ce_2x",
            ["--train.lr_schedule", "step", "--train.lr_milestones", "[0.5, 0.75]", "--train.lr_gamma", "0.5"],
            0.0025,
        ),
        ("cot", ["--train.lr_schedule", "cosine"], 0.0),  # cosine ends at 0
    ],
)
def test_lr_schedules_step_by_epoch_and_stretch_with_ce_2x(blobs, tmp_path, method, schedule, expected):
    main([*FIT, "--method", method, "--train.max_epochs", "2", *schedule, "--train.cot_optimizers", "separate",
          "--out", str(tmp_path)])  # fmt: skip
    run = one_run(tmp_path)
    saved = torch.load(latest_checkpoint(run), weights_only=True)
    rates = [state["param_groups"][0]["lr"] for state in saved["optimizer_states"]]
    assert rates == pytest.approx([expected] * (2 if method == "cot" else 1), abs=1e-12)
    if method == "ce_2x":  # 4 epochs: the milestone at 1 became 2, so one halving; the fractions fall at 2 and 3
        assert saved["lr_schedulers"][0]["milestones"] == ({2: 1, 3: 1} if "[0.5, 0.75]" in schedule else {2: 1})


def lr_trace(run) -> list[float]:
    """The learning rate of each epoch, from the run's logs/metrics.csv (``lr-SGD``, logged at each epoch's start)."""
    with open(run / "logs" / "metrics.csv", newline="") as file:
        return [float(row["lr-SGD"]) for row in csv.DictReader(file) if row.get("lr-SGD")]


@pytest.mark.parametrize("method, epochs", [("ce", 8), ("ce_2x", 16), ("cot", 8)])
def test_a_fractional_step_schedule_decays_within_every_run_length(blobs, tmp_path, method, epochs):
    # the learning-rate trace through the CLI: decay after 1/2 and 3/4 of the run, whatever its length
    main([*FIT, "--method", method, "--train.max_epochs", "8", "--train.optimizer", "sgd", "--train.lr", "0.1",
          "--train.lr_schedule", "step", "--train.lr_milestones", "[0.5, 0.75]", "--out", str(tmp_path)])  # fmt: skip
    trace = lr_trace(one_run(tmp_path))
    half, three_quarters = epochs // 2, epochs * 3 // 4
    expected = [0.1] * half + [0.01] * (three_quarters - half) + [0.001] * (epochs - three_quarters)
    assert trace == pytest.approx(expected)


def test_a_fractional_schedule_allows_a_one_epoch_smoke_run(blobs, tmp_path):
    # a recipe's fractions cut to one epoch (how the CIFAR-10 configs are smoke-tested) run at the constant
    # rate, where epoch milestones beyond the run are refused (below)
    main([*FIT, "--train.max_epochs", "1", "--train.optimizer", "sgd", "--train.lr", "0.1",
          "--train.lr_schedule", "step", "--train.lr_milestones", "[0.5, 0.75]", "--out", str(tmp_path)])  # fmt: skip
    assert lr_trace(one_run(tmp_path)) == pytest.approx([0.1])


@pytest.mark.parametrize(
    "options,phrase",
    [
        (["--train.lr_schedule", "step"], "needs train.lr_milestones"),
        (["--train.lr_schedule", "cosine", "--train.lr_milestones", "[2]"], "apply to lr_schedule step"),
        (["--train.lr_schedule", "step", "--train.lr_milestones", "[3, 2]"], "must be increasing"),
        # a milestone the run never reaches (2 epochs): the learning rate would never decay
        (["--train.lr_schedule", "step", "--train.lr_milestones", "[1, 2]"], r"\[2\] fall at or after the run's last"),
        (
            ["--train.lr_schedule", "step", "--train.lr_milestones", "[0.5, 1.5]"],
            r"fractions of the run's epochs are in",
        ),
        (["--train.lr_schedule", "step", "--train.lr_milestones", "[1, 0.5]"], "entries .* must be an integer >= 1"),
        (["--train.lr_schedule", "linear"], "lr_schedule must be one of"),
        (["--train.lr_schedule", "step", "--train.lr_milestones", "[2]", "--train.lr_gamma", "2"], "lr_gamma must be"),
    ],
)
def test_bad_lr_schedules_are_refused_before_anything_is_made(blobs, tmp_path, options, phrase):
    with pytest.raises(ValueError, match=phrase):
        main([*FIT, *options, "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_thread_policy_by_model_size_and_idle_cores():
    from torch import nn

    from complement.experiments.runs.threads import AUTO_ONE_THREAD_BELOW, available_cores, resolve_threads

    cores = available_cores()
    small, big = nn.Linear(10, 10), nn.Linear(AUTO_ONE_THREAD_BELOW, 1)
    assert resolve_threads("auto", small, idle=float(cores)) == 1  # small: one thread even on a quiet machine
    assert resolve_threads("auto", big, idle=float(cores)) == cores
    assert resolve_threads("auto", big, idle=cores - 1.0) == max(1, cores - 1)  # a busy core is left out
    assert resolve_threads("auto", big, idle=0.3) == 1  # at least one
    assert resolve_threads("auto", big, jobs=cores, idle=float(cores)) == 1
    assert resolve_threads(3, big, idle=0.0) == 3  # a count is taken as given
    assert 1 <= resolve_threads("auto", big) <= cores  # measured


def test_idle_cores_from_proc_stat(monkeypatch, tmp_path):
    from complement.experiments.runs import threads

    mine = sorted(os.sched_getaffinity(0))
    busy = set(mine[: len(mine) // 2])  # these spend the sample busy, the others idle

    def stat(ticks: int) -> str:
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
        for cpu in range(max(mine) + 1):
            user, idle = (ticks, 5) if cpu in busy else (5, ticks)
            lines.append(f"cpu{cpu} {user} 0 3 {idle} 1 0 0 0 0 0")
        return "\n".join(lines + ["intr 1 2 3"]) + "\n"

    fake = tmp_path / "stat"
    fake.write_text(stat(100))
    monkeypatch.setattr(threads, "PROC_STAT", fake)
    monkeypatch.setattr(threads.time, "sleep", lambda s: fake.write_text(stat(300)))
    assert threads.idle_cores() == pytest.approx(len(mine) - len(busy))
    monkeypatch.setattr(threads, "PROC_STAT", tmp_path / "absent")
    assert threads.idle_cores() is None  # not Linux: auto gives every core
    assert threads.resolve_threads("auto", torch.nn.Linear(threads.AUTO_ONE_THREAD_BELOW, 1)) == len(mine)


def test_thread_count_is_recorded_and_kept_on_resume(blobs, tmp_path, monkeypatch):
    from complement.experiments.runs import fit

    before = torch.get_num_threads()
    try:
        main([*FIT, "--train.max_epochs", "1", "--threads", "1", "--out", str(tmp_path)])
        saved = json.loads((one_run(tmp_path) / "config.json").read_text())
        assert saved["threads"] == 1 and saved["threads_used"] == 1
        monkeypatch.setattr(fit, "resolve_threads", lambda *args, **kwargs: 2)  # as if the machine were quiet
        main([*FIT, "--train.max_epochs", "1", "--out", str(tmp_path / "auto")])
        run_dir = one_run(tmp_path / "auto")
        assert json.loads((run_dir / "config.json").read_text())["threads_used"] == 2
        monkeypatch.setattr(fit, "resolve_threads", lambda *args, **kwargs: 1)  # busier now: resume keeps 2
        main(["fit", "--resume", str(run_dir), "--train.max_epochs", "2", "--progress", "false", "--debug"])
        assert json.loads((run_dir / "config.json").read_text())["threads_used"] == 2
        main(["fit", "--resume", str(run_dir), "--train.max_epochs", "3", "--threads", "1", "--progress", "false"])
        assert json.loads((run_dir / "config.json").read_text())["threads_used"] == 1  # a count overrides
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be 'auto' or an integer >= 1; got 0"):
        main([*FIT, "--threads", "0", "--out", str(tmp_path / "bad")])
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        main(["compare", "--task", "blobs", "--jobs", "0", "--out", str(tmp_path / "bad"), "--debug"])
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_compare_with_parallel_jobs_gives_the_same_records(tmp_path):
    """Through the real CLI: two worker processes against one, one thread each."""
    import subprocess
    import sys

    def run(jobs):
        out = tmp_path / f"jobs{jobs}"
        subprocess.run([sys.executable, "-m", "complement", "compare", "--task", "digits", "--methods", "[ce, cot]",
                        "--seeds", "2", "--train.max_epochs", "2", "--threads", "1", "--jobs", str(jobs), "--out",
                        str(out), "--progress", "false"], check=True, capture_output=True)  # fmt: skip
        (compare_dir,) = out.iterdir()
        records = json.loads((compare_dir / "records.json").read_text())["records"]
        return [
            {k: v for k, v in r.items() if k not in ("wall_time_s", "run_dir", "predictions_path")} for r in records
        ]

    assert run(2) == run(1)


@pytest.mark.parametrize(
    ("raised", "free", "cause"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 10**9, "no space left on the device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 10**9, "the disk quota is exceeded"),
        (OSError(errno.EFBIG, "File too large"), 10**9, "the file is larger than the filesystem allows"),
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64"), 4096, "no space left"),
    ],
    ids=["ENOSPC", "EDQUOT", "EFBIG", "torch-unexpected-pos"],
)
def test_a_write_without_room_names_the_file_and_the_cause(tmp_path, monkeypatch, raised, free, cause):
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**10, 10**10, free))
    target = tmp_path / "checkpoints" / "epoch=0-step=5.ckpt"
    refused = pytest.raises(atomic.WriteError, match=rf"^cannot write {re.escape(str(target))}: {cause}")
    with refused as failure, atomic_path(target):
        raise raised
    assert failure.value.__cause__ is raised and failure.value.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    assert list(target.parent.iterdir()) == [], "the temporary file is removed"


def test_other_write_errors_keep_their_own_message(tmp_path):
    with pytest.raises(RuntimeError, match="^can't pickle$"), atomic_path(tmp_path / "x"):
        raise RuntimeError("can't pickle")
