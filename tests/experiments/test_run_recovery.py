"""A run's files that broke or are shared stay recoverable: damaged checkpoints are set aside
and the newest good one is used; older ones are pruned only once a newer one exists; one
process per run directory; a status that says ``failed`` even on a full disk.

(The same promises through the CLI in a subprocess are in ``test_resume_cli.py``.)"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from complement.experiments.cli import main
from complement.experiments.runs import checkpoints as run_checkpoints
from complement.experiments.runs import status as run_status
from complement.experiments.runs.checkpoints import PruneWhenSuperseded, resume_point
from complement.experiments.runs.config import TrainConfig
from complement.experiments.runs.launch import start_run
from complement.experiments.runs.lock import directory_lock
from complement.training.checkpointing import AtomicCheckpointIO, checksum_path, verify_checkpoint

STARTS_AFRESH = "has no checkpoint yet (stopped before its first one); training starts from step 0"


def save(path: Path, value: float = 1.0) -> Path:
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.full((64,), value)}}, path)
    return path


@pytest.fixture
def run_dir(tmp_path) -> Path:
    (tmp_path / "checkpoints").mkdir()
    return tmp_path


def test_the_checksum_is_written_beside_each_checkpoint_and_removed_with_it(tmp_path):
    path = save(tmp_path / "epoch=0-step=5.ckpt")
    name, digest = checksum_path(path).read_text().split()[::-1]
    assert name == path.name and len(digest) == 64
    assert verify_checkpoint(path) is None
    AtomicCheckpointIO().remove_checkpoint(path)
    assert not path.exists() and not checksum_path(path).exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "it is empty"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "SHA-256"),
        (lambda p: p.write_bytes(os.urandom(p.stat().st_size)), "SHA-256"),
        (lambda p: p.write_bytes(p.read_bytes().replace(b"\x00\x00\x80\x3f", b"\x00\x00\x00\x40", 1)), "SHA-256"),
    ],
    ids=["empty", "truncated", "random-bytes", "a-float-changed"],
)
def test_a_damaged_checkpoint_fails_verification_with_its_reason(tmp_path, damage, reason):
    path = save(tmp_path / "epoch=0-step=5.ckpt")
    damage(path)
    assert reason in verify_checkpoint(path)


def test_a_checkpoint_without_a_checksum_must_load(tmp_path):
    path = save(tmp_path / "epoch=0-step=5.ckpt")
    checksum_path(path).unlink()
    assert verify_checkpoint(path) is None
    path.write_bytes(path.read_bytes()[:200])
    assert verify_checkpoint(path).startswith("it cannot be read (")


def test_resume_point_sets_damaged_checkpoints_aside_and_takes_the_newest_good_one(run_dir, capsys):
    folder = run_dir / "checkpoints"
    oldest, good = save(folder / "epoch=0-step=5.ckpt"), save(folder / "epoch=1-step=10.ckpt")
    newer, newest = save(folder / "steps-epoch=1-step=12.ckpt"), save(folder / "epoch=2-step=15.ckpt")
    best = save(folder / "best-epoch=0-step=5.ckpt")
    newer.write_bytes(newer.read_bytes()[:50])
    newest.write_bytes(b"")
    (folder / "epoch=3-step=20.ckpt.sha256").write_text("0" * 64 + "  epoch=3-step=20.ckpt\n")  # a kill between renames

    point = resume_point(run_dir)

    assert point.checkpoint == good
    assert set(point.superseded) == {oldest, good}, "older good ones are kept until a newer one is written"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [oldest.name, good.name, best.name, "damaged-" + newer.name, "damaged-" + newest.name]
        + [p.name + ".sha256" for p in (oldest, good, best)]
        + ["damaged-" + p.name + ".sha256" for p in (newer, newest)]
    )
    said = capsys.readouterr().err
    assert f"checkpoint {newest} is damaged: it is empty" in said
    assert f"checkpoint {newer} is damaged: its SHA-256" in said
    assert "resuming from epoch=1-step=10.ckpt, the newest checkpoint that verifies" in said
    assert resume_point(run_dir).checkpoint == good, "a set-aside checkpoint is never picked again"


def test_resume_point_says_when_nothing_verifies_or_nothing_was_written(run_dir, capsys):
    assert resume_point(run_dir).checkpoint is None
    assert STARTS_AFRESH in capsys.readouterr().err
    save(run_dir / "checkpoints" / "epoch=0-step=5.ckpt").write_bytes(b"junk")
    assert resume_point(run_dir) == run_checkpoints.ResumePoint(None, ())
    assert "no checkpoint of" in capsys.readouterr().err


def test_superseded_checkpoints_are_pruned_only_once_a_newer_one_exists(run_dir):
    folder = run_dir / "checkpoints"
    old, resumed_from = save(folder / "steps-epoch=0-step=5.ckpt"), save(folder / "epoch=0-step=8.ckpt")
    prune = PruneWhenSuperseded(run_dir, (old, resumed_from))
    prune.on_train_batch_start()
    assert old.exists() and resumed_from.exists(), "nothing newer yet: a failed resume must leave them"
    newer = save(folder / "steps-epoch=1-step=10.ckpt")
    prune.on_train_batch_start()
    assert not old.exists() and not resumed_from.exists() and not checksum_path(old).exists()
    assert newer.exists() and checksum_path(newer).exists()


HOLD = """
import sys, time
from pathlib import Path
from complement.experiments.runs.lock import directory_lock
with directory_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_process_is_refused_naming_the_holder_and_the_lock_dies_with_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        refused = pytest.raises(RuntimeError, match=rf"in use by another complement process \(pid {holder.pid} on ")
        with refused, directory_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with directory_lock(tmp_path), directory_lock(tmp_path):  # free after a kill -9; re-entrant in a process
        pass


@pytest.mark.parametrize("says_after_s, named", [(0.2, "pid 4242 on elsewhere"), (None, "has not yet said its pid")])
def test_a_holder_caught_between_its_lock_and_its_pid_is_still_named(tmp_path, says_after_s, named):
    # two resumes started together: the loser can read the lock file before the winner has written its pid
    import fcntl
    import threading

    with open(tmp_path / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another open file: refused even in this process
        if says_after_s is not None:
            timer = threading.Timer(says_after_s, lambda: (held.write("pid 4242 on elsewhere\n"), held.flush()))
            timer.start()
        refused = pytest.raises(RuntimeError, match=rf"in use by another complement process \(.*{named}")
        with refused, directory_lock(tmp_path):
            pass
        if says_after_s is not None:
            timer.join()


def test_a_resume_while_the_run_is_locked_is_refused_through_the_cli(tmp_path, capsys):
    _, _, run = start_run("digits", "ce", 0, TrainConfig(max_epochs=1), None, tmp_path / "runs", 1)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(SystemExit) as exit:
            main(["fit", "--resume", str(run), "--progress", "false"])
    finally:
        holder.kill()
        holder.wait()
    assert exit.value.code == 1
    assert f"{run} is in use by another complement process (pid {holder.pid}" in capsys.readouterr().err
    assert not (run / "status.json").exists(), "the refused process wrote nothing"


def test_a_run_killed_during_start_up_resumes_from_step_0_and_says_so(tmp_path, capsys):
    _, _, run = start_run("digits", "ce", 0, TrainConfig(max_epochs=1), None, tmp_path / "runs", 1)
    main(["fit", "--resume", str(run), "--progress", "false"])
    assert STARTS_AFRESH in capsys.readouterr().err
    assert json.loads((run / "status.json").read_text())["status"] == "complete"


def test_on_a_full_disk_the_status_still_says_failed(tmp_path, monkeypatch):
    run_status.write_status(tmp_path, "running")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_status, "write_json", disk_full)
    run_status.write_final_status(tmp_path, "failed", error="OSError: cannot write x: " + "no space " * 100)
    found = run_status.read_status(tmp_path)
    assert found.status == "failed" and found.detail.startswith("OSError: cannot write x: no space")
    monkeypatch.setattr(run_status, "open", disk_full, raising=False)  # not even in place: no error of its own
    run_status.write_final_status(tmp_path, "interrupted", error="x")
