"""``complement fit`` and ``compare`` killed with SIGKILL at chosen and random moments, then resumed:
the result must equal an uninterrupted run bit for bit (CPU). Each kill runs the real CLI in a subprocess."""

from __future__ import annotations

import fcntl
import json
import random
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from complement.experiments.cli import main
from tests.helpers.faults import complement, environment, killed, run

# COT with the authors' two optimizers, accumulation 2, step checkpoints every 5 steps: 35 batches an
# epoch (a short last group of 1), 18 steps an epoch, step checkpoints at 5, 10, ..., 35, epoch ones at 18 and 36.
FIT = ["fit", "--task", "digits", "--method", "cot", "--train.cot_optimizers", "separate",
       "--train.accumulate_grad_batches", "2", "--train.checkpoint_every_n_steps", "5", "--train.max_epochs", "2",
       "--progress", "false"]  # fmt: skip


def run_dir_of(tmp_path: Path) -> Path:
    (only,) = (tmp_path / "runs").iterdir()
    return only


def assert_same_run(run: Path, reference: Path) -> None:
    ours, theirs = torch.load(run / "predictions.pt"), torch.load(reference / "predictions.pt")
    assert torch.equal(ours["probs"], theirs["probs"]) and torch.equal(ours["target"], theirs["target"])
    assert json.loads((run / "history.json").read_text()) == json.loads((reference / "history.json").read_text())
    final = "epoch=1-step=36.ckpt"
    ours, theirs = (torch.load(d / "checkpoints" / final, weights_only=True) for d in (run, reference))
    for key, value in theirs["state_dict"].items():
        assert torch.equal(ours["state_dict"][key], value), key
    for a, b in zip(ours["optimizer_states"], theirs["optimizer_states"]):
        for key, state in b["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(a["state"][key][name]), torch.as_tensor(value)), (key, name)
    assert json.loads((run / "status.json").read_text())["status"] == "complete"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, worker_id) -> Path:
    """The uninterrupted run, made once for all xdist workers (the first to ask makes it under a lock; the
    tests only read it)."""
    root = tmp_path_factory.getbasetemp()
    root = root if worker_id == "master" else root.parent  # the workers' shared base folder
    folder = root / "uninterrupted"
    with open(root / "uninterrupted.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            result = run(complement(*FIT, "--out", str(folder / "runs")), folder)
            assert result.returncode == 0, result.stderr
            (folder / "made").touch()
    return run_dir_of(folder)


@pytest.mark.slow
def test_fit_killed_again_and_again_then_resumed_equals_uninterrupted(reference, tmp_path, capsys):
    """One run killed five times, each resume killed at the next kind of moment, then finished."""
    moments = [
        "step:7",  # mid-epoch, two steps past the last checkpoint (step 5)
        "checkpoint:1",  # just after a checkpoint was written (step 10)
        "torn_checkpoint:1",  # during a checkpoint write (step 15): the file before it must be used
        "step:19",  # just past an epoch boundary (the epoch checkpoint is at step 18)
        "predict:1",  # training done, killed while predicting the test set
    ]
    run_dir = None
    for fault in moments:
        args = FIT + ["--out", str(tmp_path / "runs")] if run_dir is None else ["fit", "--resume", str(run_dir)]
        result = run(complement(*args, "--progress", "false"), tmp_path, fault)
        assert killed(result), f"the fault {fault} did not kill the run: {result.returncode}\n{result.stderr[-2000:]}"
        run_dir = run_dir_of(tmp_path)
        main(["status", str(run_dir)])  # in this process: the killed run's pid is another's
        status = capsys.readouterr().out
        assert "interrupted" in status and "no longer runs" in status, status
    assert any(run_dir.rglob(".*.tmp")), "the torn checkpoint write left its temporary file"
    resumed = run(complement("fit", "--resume", str(run_dir), "--progress", "false"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not list(run_dir.rglob(".*.tmp")), "temporary files of killed writes are removed on resume"
    assert_same_run(run_dir, reference)


@pytest.mark.slow
def test_fit_killed_at_random_moments_then_resumed_equals_uninterrupted(reference, tmp_path):
    """A SIGKILL at a random time during training (the delay is printed on failure)."""
    rng = random.Random()
    delays = []
    for _ in range(1):
        args = (
            complement(*FIT, "--out", str(tmp_path / "runs"))
            if not delays
            else complement("fit", "--resume", str(run_dir_of(tmp_path)), "--progress", "false")
        )
        process = subprocess.Popen(args, env=environment(tmp_path, None), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob("runs/*/status.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        delays.append(rng.uniform(0.0, 2.5))
        time.sleep(delays[-1])
        process.send_signal(signal.SIGKILL)
        process.wait()
    run_dir = run_dir_of(tmp_path)
    resumed = run(complement("fit", "--resume", str(run_dir), "--progress", "false"), tmp_path)
    assert resumed.returncode == 0, f"delays {delays}: {resumed.stderr[-3000:]}"
    assert_same_run(run_dir, reference)


COMPARE = ["compare", "--task", "digits", "--methods", "[ce, cot]", "--seeds", "2", "--train.max_epochs", "1",
           "--train.checkpoint_every_n_steps", "10", "--progress", "false"]  # fmt: skip


def records_without_times(compare_dir: Path) -> list[dict]:
    records = json.loads((compare_dir / "records.json").read_text())["records"]
    return [{k: v for k, v in record.items() if k != "wall_time_s"} for record in records]


@pytest.mark.slow
def test_compare_killed_in_a_run_and_in_the_report_then_resumed_equals_uninterrupted(tmp_path, capsys):
    whole = run(complement(*COMPARE, "--out", str(tmp_path / "whole")), tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    (reference,) = (tmp_path / "whole").iterdir()

    # ce-seed0 writes checkpoints at steps 10, 20, 30 and 35 (epoch end); the 5th is cot-seed0's at step 10
    first = run(complement(*COMPARE, "--out", str(tmp_path / "runs")), tmp_path, "checkpoint:5")
    assert killed(first)
    compare_dir = run_dir_of(tmp_path)
    assert not (compare_dir / "report.md").exists()
    main(["status", str(compare_dir)])
    listing = capsys.readouterr().out
    assert "ce-seed0" in listing and "complete" in listing and "cot-seed0" in listing and "interrupted" in listing
    assert "not started" in listing and "report.md not yet written" in listing

    second = run(complement("compare", "--resume", str(compare_dir), "--progress", "false"), tmp_path, "report:1")
    assert killed(second), second.stderr[-3000:]
    assert not (compare_dir / "report.md").exists(), "a report killed half-way must not look complete"
    for png in compare_dir.rglob("*.png"):  # whatever figure exists is whole
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.read_bytes()[-8:-4] == b"IEND"

    third = run(complement("compare", "--resume", str(compare_dir), "--progress", "false"), tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert (compare_dir / "report.md").exists()
    assert records_without_times(compare_dir) == records_without_times(reference)
    for name in ("ce-seed0", "cot-seed0", "ce-seed1", "cot-seed1"):
        a, b = (torch.load(d / name / "predictions.pt") for d in (compare_dir, reference))
        assert torch.equal(a["probs"], b["probs"]), name
        spec = json.loads((compare_dir / name / "config.json").read_text())
        assert spec["task"] == "digits" and spec["task_options"] == {} and spec["method"] == name.split("-")[0]


@pytest.fixture(scope="module")
def killed_at_step_22(tmp_path_factory) -> Path:
    """FIT killed after step 22: its checkpoints are epoch=0-step=18 and steps-epoch=1-step=20."""
    tmp_path = tmp_path_factory.mktemp("killed22")
    result = run(complement(*FIT, "--out", str(tmp_path / "runs")), tmp_path, "step:22")
    assert killed(result), result.stderr[-2000:]
    return run_dir_of(tmp_path)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # in a tensor's bytes: the file still loads, with another number
    path.write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("damage", [truncate, flip_a_byte])
def test_damaged_newest_checkpoint_resumes_from_the_previous_one_and_ends_identical(
    damage, killed_at_step_22, reference, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(killed_at_step_22, run_dir)
    newest = run_dir / "checkpoints" / "steps-epoch=1-step=20.ckpt"
    damage(newest)
    result = run(complement("fit", "--resume", str(run_dir), "--progress", "false"), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"checkpoint {newest} is damaged" in result.stderr
    assert "resuming from epoch=0-step=18.ckpt, the newest checkpoint that verifies" in result.stderr
    assert (run_dir / "checkpoints" / "damaged-steps-epoch=1-step=20.ckpt").exists(), "kept aside, for a look"
    assert_same_run(run_dir, reference)


def start_paused(args: list[str], tmp_path: Path, step: int, marker: Path) -> subprocess.Popen:
    env = {**environment(tmp_path, f"pause:{step}"), "COMPLEMENT_FAULT_MARKER": str(marker)}
    # a shell's background job (CI run with `&`) ignores SIGINT, and the child would inherit that: the CLI keeps
    # an ignored signal ignored (nohup), so the child gets the default disposition back, as a terminal's would
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip  # noqa: PLW1509


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_resumes_at_once_one_is_refused_sigterm_stops_the_other_and_its_hint_resumes(reference, tmp_path):
    first = run(complement(*FIT, "--out", str(tmp_path / "runs")), tmp_path, "step:3")
    assert killed(first)
    run_dir = run_dir_of(tmp_path)
    resume = complement("fit", "--resume", str(run_dir), "--progress", "false")
    markers = [tmp_path / "paused-a", tmp_path / "paused-b"]
    processes = [start_paused(resume, tmp_path, 7, marker) for marker in markers]  # started together
    deadline = time.monotonic() + 120
    while all(p.poll() is None for p in processes):
        assert time.monotonic() < deadline, "neither resume was refused"
        time.sleep(0.05)
    (refused,) = [p for p in processes if p.poll() is not None]
    (winner,) = [p for p in processes if p is not refused]
    stderr = refused.communicate()[1]
    assert refused.returncode == 1, stderr
    assert f"{run_dir} is in use by another complement process (pid {winner.pid} on " in stderr

    wait_for(markers[processes.index(winner)], winner)
    winner.send_signal(signal.SIGTERM)
    stderr = winner.communicate(timeout=60)[1]
    assert winner.returncode == 143, stderr[-3000:]
    hint = f"complement: interrupted by SIGTERM; resume with: complement fit --resume {run_dir}"
    assert hint in stderr, stderr[-3000:]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"

    command = stderr.split("resume with: ")[1].split()[1:]  # the printed command, run as printed
    resumed = run(complement(*command, "--progress", "false"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(run_dir, reference)


@pytest.mark.slow
def test_ctrl_c_stops_a_run_with_130_and_says_how_to_resume(tmp_path):
    marker = tmp_path / "paused"
    process = start_paused(complement(*FIT, "--out", str(tmp_path / "runs")), tmp_path, 2, marker)
    wait_for(marker, process)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=60)[1]
    run_dir = run_dir_of(tmp_path)
    assert process.returncode == 130, stderr[-3000:]
    assert f"interrupted by Ctrl-C (SIGINT); resume with: complement fit --resume {run_dir}" in stderr
    assert "Traceback" not in stderr
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_a_file_size_limit_names_the_checkpoint_and_the_cause_and_status_says_failed(tmp_path, capsys):
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))  # the configs fit, a checkpoint does not

    args = complement(*FIT, "--out", str(tmp_path / "runs"))
    result = subprocess.run(args, env=environment(tmp_path, None), capture_output=True, text=True, timeout=300,
                            preexec_fn=limit_file_size)  # fmt: skip
    run_dir = run_dir_of(tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"cannot write {run_dir / 'checkpoints'}" in result.stderr, result.stderr[-3000:]
    assert "file-size limit" in result.stderr
    main(["status", str(run_dir)])
    status = capsys.readouterr().out
    assert "failed" in status and "file-size limit" in status, status
